"""The data models of arena_async (attrs, frozen, slotted)."""

from .arena import (
    ArenaLogin,
    ItemReference,
    ItemSummary,
    ItemTicketReference,
    TicketSummary,
    TrainingPlanSummary,
    TrainingRecord,
    Url,
)
from .common import Outcome, Page, Quota, Stats

__all__ = [
    "ArenaLogin",
    "ItemReference",
    "ItemSummary",
    "ItemTicketReference",
    "Outcome",
    "Page",
    "Quota",
    "Stats",
    "TicketSummary",
    "TrainingPlanSummary",
    "TrainingRecord",
    "Url",
]
