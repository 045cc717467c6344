"""The data models of arena_async (attrs, frozen, slotted)."""

from .akana import (
    Action,
    AuthoringUser,
    Comment,
    CommentsPreview,
    Image,
    TargetResource,
    Ticket,
)
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
    "Action",
    "ArenaLogin",
    "AuthoringUser",
    "Comment",
    "CommentsPreview",
    "Image",
    "ItemReference",
    "ItemSummary",
    "ItemTicketReference",
    "Outcome",
    "Page",
    "Quota",
    "Stats",
    "TargetResource",
    "Ticket",
    "TicketSummary",
    "TrainingPlanSummary",
    "TrainingRecord",
    "Url",
]
