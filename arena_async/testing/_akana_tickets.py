"""FakeAkana's ticket data: its users, generated tickets, and the pure rules over them.

What the fake's handlers apply to the stored tickets, without HTTP: the query
parameters of ``GET /api/tickets`` (:func:`_parse_params`), who sees what
(:func:`_visible`), the filters (:func:`_matches`), the orders (:func:`_sorted`), how a
ticket is rendered (:func:`_render`), the workflow actions (:func:`_actions_for`), and
the seeded data (:func:`_default_users`, :func:`_generate_tickets`). The public names are
re-exported by :mod:`arena_async.testing._fake_akana`.

Example::

    users = _default_users("acme")
    tickets = _generate_tickets(random.Random(1), 10, "acme", users)
    seen = [t for t in tickets if _visible(t, users[1])]
"""

from __future__ import annotations

import copy
import functools
import random
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from multidict import MultiMapping

__all__ = [
    "DEFAULT_PASSWORD",
    "FILTER_PARAMS",
    "LABELS",
    "SORT_ORDERS",
    "STATES",
    "TICKET_PARAMS",
    "FakeUser",
]

#: The password of the default users (the fake is for tests: this is not a secret).
DEFAULT_PASSWORD = "Akana-Passw0rd!"
#: Ticket priority labels the platform documents.
LABELS = (
    "com.soa.ticket.label.priority.high",
    "com.soa.ticket.label.priority.medium",
    "com.soa.ticket.label.priority.low",
)
#: Ticket states the fake uses (the real list is unconfirmed).
STATES = ("OPEN", "RESOLVED", "CLOSED", "REOPEN")
#: ``SortBy`` values the fake understands; anything else falls back to the default order
#: (newest ``Created`` first), as an unknown value does on a lenient server.
SORT_ORDERS = (
    "com.soa.sort.order.updated",
    "com.soa.sort.order.date",
    "com.soa.sort.order.alphabetical",
)
#: The filters of ``GET /api/tickets``, spelled exactly as the platform does.
FILTER_PARAMS = (
    "APIID", "AppID", "RetrievingUserID", "AuthorID", "ItemID", "Tag", "Label", "State",
)
#: The query parameters of ``GET /api/tickets``, spelled exactly as the platform does.
TICKET_PARAMS = (
    *FILTER_PARAMS,
    "IncludeComments", "NumberOfComments", "IncludeActions", "SortBy", "start", "count",
)
#: Filters that compare one ticket field with the value (the filter's name -> the field).
_FIELD_FILTERS = {
    "APIID": "APIID", "AppID": "AppID", "AuthorID": "UserID", "ItemID": "TicketID",
    "State": "State",
}
#: Filters that look for the value in a list field of the ticket (of the same name).
_LIST_FILTERS = ("Tag", "Label")
_DEFAULT_COUNT = 100
_DEFAULT_COMMENTS = 2
_ACTIONS = {
    "OPEN": ("ticket.action.resolve", "ticket.action.close"),
    "REOPEN": ("ticket.action.resolve", "ticket.action.close"),
    "RESOLVED": ("ticket.action.reopen", "ticket.action.close"),
    "CLOSED": ("ticket.action.reopen",),
}
_DELETE_ACTION = "discussion.action.delete"
_NEXT_STATE = {
    "ticket.action.resolve": "RESOLVED",
    "ticket.action.close": "CLOSED",
    "ticket.action.reopen": "REOPEN",
}
_EPOCH_2015 = datetime(2015, 5, 12, 17, 27, 6, tzinfo=UTC)


@attrs.frozen(slots=True)
class FakeUser:
    """A user of the fake platform.

    ``admin`` users see every ticket; other users see ``Public`` tickets and the tickets
    they wrote (a simplification of Akana's visibility rules that is enough to prove a
    client copes with "fewer tickets, not an error"). A user with ``pending_tasks``
    (strings or objects, sent as given) logs in with 200 and a non-empty
    ``pendingTasks``, and the token it gets is refused (401) by every other call.
    A directory (LDAP) user has a ``domain`` and a ``username``, and logs in through
    ``POST /api/login/ssoLogin`` with them and its ``password``.

    Example: ``FakeUser("jo@example.com", "pw", user_id="u1.acme", name="jo", admin=False)``;
    a directory user: ``FakeUser("jo@corp", "pw", "u2.acme", "jo", domain="CORP",
    username="jo")``
    """

    email: str
    password: str = attrs.field(repr=False)
    user_id: str
    name: str
    admin: bool = True
    pending_tasks: tuple[str | Mapping[str, Any], ...] = ()
    #: The directory (login domain) of a directory user (None: not one).
    domain: str | None = None
    #: Its name in that directory.
    username: str | None = None


@attrs.frozen(slots=True)
class _Params:
    filters: dict[str, str]
    include_comments: bool
    number_of_comments: int
    include_actions: bool
    sort_by: str | None
    start: int
    count: int


class _BadParam(Exception):
    pass


def _parse_params(query: MultiMapping[str]) -> _Params:
    def boolean(name: str, default: bool) -> bool:
        value = query.get(name)
        if value is None:
            return default
        if value not in ("true", "false"):
            raise _BadParam(f"{name} must be true or false, got {value[:20]!r}")
        return value == "true"

    def integer(name: str, default: int) -> int:
        value = query.get(name)
        if value is None:
            return default
        if not value.isascii() or not value.isdigit():
            raise _BadParam(f"{name} must be a non-negative integer, got {value[:20]!r}")
        return int(value)

    filters = {name: query[name] for name in FILTER_PARAMS if name in query}
    return _Params(
        filters=filters,
        include_comments=boolean("IncludeComments", True),
        number_of_comments=integer("NumberOfComments", _DEFAULT_COMMENTS),
        include_actions=boolean("IncludeActions", True),
        sort_by=query.get("SortBy"),
        start=integer("start", 0),
        count=integer("count", _DEFAULT_COUNT),
    )


def _visible(ticket: Mapping[str, Any], user: FakeUser) -> bool:
    if user.admin or ticket.get("Visibility") == "Public":
        return True
    return ticket.get("UserID") == user.user_id


def _matches(
    ticket: Mapping[str, Any], filters: Mapping[str, str], users: Sequence[FakeUser]
) -> bool:
    """Whether ``ticket`` passes every filter (``RetrievingUserID``: seen by that user)."""
    for name, value in filters.items():
        if name in _FIELD_FILTERS and ticket.get(_FIELD_FILTERS[name]) != value:
            return False
        if name in _LIST_FILTERS and value not in (ticket.get(name) or []):
            return False
        if name == "RetrievingUserID":
            viewer = next((u for u in users if u.user_id == value), None)
            if viewer is None or not _visible(ticket, viewer):
                return False
    return True


def _sorted(
    rows: list[dict[str, Any]], sort_by: str | None, updated: Mapping[str, float]
) -> list[dict[str, Any]]:
    """``rows`` in the order of ``SortBy`` (``updated``: last change by ticket id)."""
    def tie(t: Mapping[str, Any]) -> tuple[int, str]:
        return (_ticket_number(t["TicketID"]) or 0, t["TicketID"])

    if sort_by == "com.soa.sort.order.updated":
        return sorted(rows, key=lambda t: (updated[t["TicketID"]], *tie(t)), reverse=True)
    if sort_by == "com.soa.sort.order.alphabetical":
        return sorted(rows, key=lambda t: (str(t.get("Title", "")).lower(), t["TicketID"]))
    return sorted(rows, key=lambda t: (_created_ts(t), *tie(t)), reverse=True)


def _render(
    ticket: Mapping[str, Any],
    include_comments: bool = True,
    number_of_comments: int = _DEFAULT_COMMENTS,
    include_actions: bool = True,
) -> dict[str, Any]:
    """A deep copy of ``ticket`` as sent (the defaults: as ``GET /api/tickets/{id}``)."""
    out = copy.deepcopy(dict(ticket))
    preview = out.get("CommentsPreview")
    if not include_comments:
        out.pop("CommentsPreview", None)
    elif isinstance(preview, dict) and isinstance(preview.get("Comment"), list):
        preview["Comment"] = preview["Comment"][:number_of_comments]
    if not include_actions:
        out.pop("Action", None)
    return out



def _actions_for(state: str) -> list[dict[str, str]]:
    names = (*_ACTIONS.get(state, ()), _DELETE_ACTION)
    return [{"value": name, "label": name} for name in names]


def _add_comment(ticket: dict[str, Any], user: FakeUser, content: str, now: float) -> None:
    preview = ticket.setdefault("CommentsPreview", {"Count": 0, "Comment": []})
    tenant = ticket["TicketID"].rsplit(".", 1)[-1]
    preview.setdefault("Comment", []).insert(0, {
        "CommentID": f"{uuid.uuid4()}.{tenant}",
        "CommentSubjectID": ticket["TicketID"],
        "Content": content,
        "Created": _iso(now),
        "Marks": 0,
        "IsMarked": False,
        "UserID": user.user_id,
        "UserName": user.name,
    })
    preview["Count"] = len(preview["Comment"])
    ticket["Comments"] = preview["Count"]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _created_ts(ticket: Mapping[str, Any]) -> float:
    created = ticket.get("Created")
    return _timestamp(created) if isinstance(created, str) else float("-inf")


@functools.lru_cache(maxsize=65536)  # every listing sorts by it: parse each date once
def _timestamp(created: str) -> float:
    try:
        parsed = datetime.fromisoformat(created)
    except ValueError:
        return float("-inf")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@functools.lru_cache(maxsize=65536)
def _ticket_number(ticket_id: str) -> int | None:
    head = ticket_id.split(".", 1)[0]
    digits = head.removeprefix("ticket")
    return int(digits) if digits.isdigit() else None


def _bare_id(resource_id: str) -> str:
    return resource_id.rsplit(".", 1)[0] if "." in resource_id else resource_id


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _default_users(tenant: str) -> list[FakeUser]:
    rng = random.Random(f"users:{tenant}")
    return [
        FakeUser(f"admin@{tenant}.example", DEFAULT_PASSWORD, f"{_uuid(rng)}.{tenant}",
                 f"admin{tenant.capitalize()}", admin=True),
        FakeUser(f"developer@{tenant}.example", DEFAULT_PASSWORD, f"{_uuid(rng)}.{tenant}",
                 "developerJordan", admin=False),
        FakeUser(f"newhire@{tenant}.example", DEFAULT_PASSWORD, f"{_uuid(rng)}.{tenant}",
                 "newhireSam", admin=False, pending_tasks=("ChangePassword",)),
    ]


_API_NAMES = ("ACME Payments API", "ACME Accounts API", "ACME Fraud API", "ACME Ledger API",
              "ACME Notifications API")
_TAGS = ("bug", "payment", "login", "timeout", "docs", "performance", "sandbox", "billing",
         "oauth", "feature")
_TITLES = ("Bug when using multiple payment types", "Cannot log in after timeout",
           "Sandbox returns 500 on refund", "Docs missing for webhook retries",
           "Slow responses from the accounts endpoint", "OAuth token rejected after renewal",
           "Rate limit headers missing", "Feature request: bulk export")
_AUTHOR_NAMES = ("alexPatel", "brookeChen", "carlosDiaz", "danaKim", "eliOkafor")


def _generate_tickets(
    rng: random.Random, count: int, tenant: str, users: Sequence[FakeUser]
) -> list[dict[str, Any]]:
    apis = []
    for name in _API_NAMES:
        api_id = f"{_uuid(rng)}.{tenant}"
        versions = [(f"{major}.0", f"{_uuid(rng)}.{tenant}") for major in (1, 2)]
        apis.append((name, api_id, versions))
    apps = [(f"App {n}", f"{_uuid(rng)}.{tenant}") for n in range(4)]
    authors = [(u.user_id, u.name) for u in users if not u.pending_tasks]
    authors += [(f"{_uuid(rng)}.{tenant}", name) for name in _AUTHOR_NAMES]
    restricted = next((u for u in users if not u.admin and not u.pending_tasks), None)
    host = f"https://{tenant}.apiportal.example"
    tickets: list[dict[str, Any]] = []
    created = _EPOCH_2015
    for n in range(count):
        created += timedelta(seconds=rng.randint(60, 7200))
        ticket_id = f"ticket{11000 + n}.{tenant}"
        if restricted is not None and rng.random() < 0.1:
            user_id, user_name = restricted.user_id, restricted.name
        else:
            user_id, user_name = rng.choice(authors)
        api_name, api_root, versions = rng.choice(apis)
        version_name, version_id = rng.choice(versions)
        state = rng.choices(STATES, weights=(40, 25, 25, 10))[0]
        avatar = {
            "Url": f"{host}/api/users/{user_id}/avatar",
            "Link": f"../{tenant}#/user/{user_id}/details",
        }
        ticket: dict[str, Any] = {"TicketID": ticket_id, "APIID": version_id}
        app = rng.choice(apps) if rng.random() < 0.5 else None
        if app is not None:
            ticket["AppID"] = app[1]
        ticket.update({
            "Title": rng.choice(_TITLES),
            "Description": f"Report {n}: steps to reproduce follow.",
            "Environment": rng.choice(("Production", "Sandbox")),
            "State": state,
            "UserID": user_id,
        })
        if rng.random() < 0.8:
            ticket["UserName"] = user_name
        comments = [
            {
                "CommentID": f"{_uuid(rng)}.{tenant}",
                "CommentSubjectID": ticket_id,
                "Content": f"Comment {k} on {ticket_id}",
                "Created": (created + timedelta(minutes=5 * (k + 1))).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"),
                "Marks": 0,
                "IsMarked": False,
                "UserID": authors[k % len(authors)][0],
                "UserName": authors[k % len(authors)][1],
            }
            for k in range(rng.choice((0, 0, 0, 1, 2, 3, 5)))
        ]
        marks = rng.choice((0, 0, 0, 1, 2))
        ticket.update({
            "Created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Label": [rng.choice(LABELS)],
            "Tag": rng.sample(_TAGS, rng.randint(0, 3)),
            "Comments": len(comments),
            "Marks": marks,
            "IsMarked": marks > 0 and rng.random() < 0.5,
            "Visibility": "Public" if rng.random() < 0.3 else "Limited",
        })
        if rng.random() < 0.85:
            ticket["PubDate"] = ticket["Created"]
        resources = [
            {"Name": api_name, "ID": api_root, "Type": "api"},
            {"Name": version_name, "ID": version_id, "Type": "apiversion"},
        ]
        if app is not None:
            resources.append({"Name": app[0], "ID": app[1], "Type": "app"})
        ticket["Action"] = _actions_for(state)
        ticket["TargetResources"] = {"TargetResource": resources}
        if rng.random() < 0.8:
            ticket["Image"] = dict(avatar)
        ticket["CommentsPreview"] = {"Count": len(comments), "Comment": comments}
        ticket["Link"] = f"../{tenant}#/forum/discussions/{ticket_id}/details"
        ticket["AuthoringUser"] = {
            "UserID": user_id,
            "Name": user_name,
            "Image": {**avatar, "Title": user_name,
                      "Link": f"#/users/{user_id}/details"},
        }
        ticket["DescriptionMediaType"] = rng.choice(("text/plain", "text/markdown"))
        artifacts = []
        if rng.random() < 0.05:
            artifacts.append({
                "ContextID": f"{_uuid(rng)}.{tenant}",
                "FileName": "screenshot",
                "BaseUri": host,
                "UriPath": f"/api/boards/items/{ticket_id}/artifacts/screenshot.png",
            })
        ticket["BoardItemArtifacts"] = {"BoardItemArtifact": artifacts}
        tickets.append(ticket)
    return tickets
