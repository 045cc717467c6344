"""Shares: one Arena session and one quota ledger for every process of an integration.

Public: :class:`SQLiteShare`, :class:`RedisShare` (and the :class:`Share` base class for a
third backend). The rules are pure steps in :mod:`._state`; a backend only stores.
"""

from ._base import Share, open_share
from ._link import ShareLink
from ._redis import RedisShare
from ._sqlite import SQLiteShare

__all__ = ["RedisShare", "SQLiteShare", "Share", "ShareLink", "open_share"]
