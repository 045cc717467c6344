"""Cache keys and tags: which request an answer is for, and which items it is about (pure).

Every key and tag starts with the client's *namespace* (base URL, identity, workspace, hashed)
and ``:``, so clients of other users, workspaces or servers never see each other's answers,
and a namespace can be dropped whole. Keys and tags are hashes: a share holding them does not
learn which items or searches were asked.

Tags say what an answer is about, for invalidation:

- ``item:<guid>``: every answer under ``/items/<guid>`` (the item and its sub-resources);
- ``refs:<guid>``: every item-reference answer that involves the item, from either end
  (references are bidirectional: the answer of ``/items/A/items`` carries ``refs:A`` and
  ``refs:B`` for each item B it lists), so a write on A's references drops B's too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from urllib.parse import quote

from .._protocol import Request
from ..models.arena import ItemReference

__all__ = ["answer_key", "item_tags", "namespace", "reference_tags", "tags_for"]

#: Bumped when the stored format changes, so that old entries are never misread.
_FORMAT = "answers/1"


def _hash(text: str, size: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def namespace(base_url: str, identity: str, workspace_id: int | None) -> str:
    """The namespace of one client's answers: who asked whom.

    Example: ``namespace("https://api.arenasolutions.com/v1", "me@example.com", 123)``
    """
    return _hash(f"{_FORMAT}\n{base_url}\n{identity}\n{workspace_id}", 16)


def answer_key(ns: str, request: Request) -> str:
    """The key of a request's answer: method, path and the query sorted (its order does not
    change the answer).

    Example: ``answer_key(ns, Request.on(base, "GET", "items", guid, "tickets"))``
    """
    query = ""
    if request.params:
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}"
                         for k, v in sorted(request.params.items()))
    return f"{ns}:{_hash(f'{request.method} {request.path}?{query}', 32)}"


def _tag(ns: str, kind: str, item_guid: str) -> str:
    return f"{ns}:{kind}{_hash(f'{kind}:{item_guid}', 24)}"


def item_tags(ns: str, item_guid: str) -> list[str]:
    """What :meth:`~arena_async.ArenaClient.forget` drops for one item: everything under
    ``/items/<guid>`` and every reference answer that involves it."""
    return [_tag(ns, "i", item_guid), _tag(ns, "r", item_guid)]


def reference_tags(ns: str, item_guids: Iterable[str]) -> list[str]:
    """What a write of a reference drops: every reference answer involving these items."""
    return [_tag(ns, "r", guid) for guid in dict.fromkeys(item_guids)]


def tags_for(ns: str, request: Request, parsed: object) -> list[str]:
    """The tags of an answer: its item (from the path ``/items/<guid>/...``) and, for item
    references, both ends of every reference it holds."""
    parts = request.path.split("/")
    if len(parts) < 3 or parts[1] != "items":  # a search (GET /items): no item
        return []
    item_guid = parts[2]
    tags = [_tag(ns, "i", item_guid)]
    if len(parts) >= 4 and parts[3] == "items":
        ends = [item_guid]
        refs = parsed if isinstance(parsed, list) else [parsed]
        ends += [ref.item.guid for ref in refs if isinstance(ref, ItemReference)]
        tags += reference_tags(ns, ends)
    return tags
