"""The Arena PLM client."""

from .client import DEFAULT_BASE_URL, ArenaClient

__all__ = ["DEFAULT_BASE_URL", "ArenaClient"]
