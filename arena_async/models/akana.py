"""Akana API Platform models: frozen, slotted attrs classes with wire names in field metadata.

Akana speaks PascalCase (``TicketID``, ``TargetResources``) and wraps some lists in an
object named after the list (``"TargetResources": {"TargetResource": [...]}``); the
``unwrap=`` metadata flattens those into plain list fields. Unknown wire keys are ignored,
and every field a real ticket may leave out has a default, so a sparse ticket still
structures.

Example::

    from arena_async._convert import structure
    ticket = structure({"TicketID": "ticket11623.acmepaymentscorp",
                        "Created": "2015-05-12T17:27:06Z"}, Ticket)
    ticket.created.isoformat()   # '2015-05-12T17:27:06+00:00'
    ticket.labels                # []
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import attrs

from .._convert import structure
from ._wire import wire, wire_name

__all__ = [
    "TICKETS_KEY",
    "Action",
    "AkanaLogin",
    "AuthoringUser",
    "Comment",
    "CommentsPreview",
    "Image",
    "TargetResource",
    "Ticket",
    "parse_login",
]

logger: logging.Logger = logging.getLogger(__name__)

#: The key of the list in the ``GET /api/tickets`` envelope: ``{"Ticket": [...]}``.
TICKETS_KEY = "Ticket"


@attrs.frozen(slots=True)
class Action:
    """A workflow action currently valid for the resource (wire ``value`` / ``label``).

    Example: ``Action(value="discussion.action.delete", label="discussion.action.delete")``
    """

    value: str | None = None
    label: str | None = None


@attrs.frozen(slots=True)
class TargetResource:
    """A resource a ticket is about: an API, an API version, an app (wire ``Name``/``ID``/``Type``).

    Example: ``TargetResource(name="ACME Payments API", id="b28f...acmepaymentscorp", type="api")``
    """

    name: str | None = attrs.field(default=None, metadata=wire("Name"))
    id: str | None = attrs.field(default=None, metadata=wire("ID"))
    type: str | None = attrs.field(default=None, metadata=wire("Type"))


@attrs.frozen(slots=True)
class Image:
    """An avatar or picture: ``url`` of the image, ``link`` to its page, ``title``.

    Example: ``Image(url="http://host/api/users/u1.acme/avatar", link="#/users/u1.acme/details")``
    """

    url: str | None = attrs.field(default=None, metadata=wire("Url"))
    link: str | None = attrs.field(default=None, metadata=wire("Link"))
    title: str | None = attrs.field(default=None, metadata=wire("Title"))


@attrs.frozen(slots=True)
class AuthoringUser:
    """The author of a resource (wire ``UserID``, ``Name``, ``Image``).

    Example: ``AuthoringUser(user_id="a715...acmepaymentscorp", name="adminAcmepaymentscorp")``
    """

    user_id: str | None = attrs.field(default=None, metadata=wire("UserID"))
    name: str | None = attrs.field(default=None, metadata=wire("Name"))
    image: Image | None = attrs.field(default=None, metadata=wire("Image"))


@attrs.frozen(slots=True)
class Comment:
    """One comment on a ticket, as previewed in ``CommentsPreview.Comment``.

    Modelled on what Akana's comment listings carry (``CommentID``, ``CommentSubjectID``,
    ``Content``, ``UserID``, ``UserName``, ``Created``, ``Marks``, ``IsMarked``,
    ``AuthoringUser``); every field is optional and ``Text`` is accepted for ``Content``.

    Example: ``Comment(comment_id="1039...acme", content="Thanks!", user_name="jo")``
    """

    comment_id: str | None = attrs.field(default=None, metadata=wire("CommentID"))
    subject_id: str | None = attrs.field(default=None, metadata=wire("CommentSubjectID"))
    content: str | None = attrs.field(default=None, metadata=wire("Content", "Text"))
    user_id: str | None = attrs.field(default=None, metadata=wire("UserID"))
    user_name: str | None = attrs.field(default=None, metadata=wire("UserName"))
    created: datetime | None = attrs.field(default=None, metadata=wire("Created"))
    marks: int | None = attrs.field(default=None, metadata=wire("Marks"))
    is_marked: bool | None = attrs.field(default=None, metadata=wire("IsMarked"))
    authoring_user: AuthoringUser | None = attrs.field(
        default=None, metadata=wire("AuthoringUser")
    )


@attrs.frozen(slots=True)
class CommentsPreview:
    """The first few comments of a ticket (``NumberOfComments``, default 2) and their ``count``.

    Example: ``CommentsPreview(count=5, comments=[Comment(content="first"), ...])``
    """

    count: int | None = attrs.field(default=None, metadata=wire("Count"))
    comments: list[Comment] = attrs.field(factory=list, metadata=wire("Comment", lone=True))


@attrs.frozen(slots=True)
class Ticket:
    """An Akana ticket (a support discussion about an API or app).

    Only ``ticket_id`` is required. ``created`` is in every documented response, but
    Akana's Ticket object doubles as the ``POST /api/tickets`` request body (where it
    is absent: "used only in response messages") and the single-ticket answer's shape is
    unconfirmed, so a ticket without it reads as ``created=None`` instead of failing a
    whole page. Counts missing from the wire (``Comments``, ``Marks``) read as 0 and
    ``IsMarked`` as False; every other field a ticket may omit is None or an empty list.

    ``comment_count`` is the wire ``Comments`` (a number, not the comments themselves:
    those are in ``comments_preview``). ``labels`` are priorities such as
    ``com.soa.ticket.label.priority.high``; ``board_item_artifacts`` are kept as raw
    objects. Datetimes are aware UTC.

    Example::

        async for t in akana.tickets.iter(state="OPEN"):
            print(t.ticket_id, t.created, t.labels, [r.name for r in t.target_resources])
    """

    ticket_id: str = attrs.field(metadata=wire("TicketID"))
    api_id: str | None = attrs.field(default=None, metadata=wire("APIID"))
    app_id: str | None = attrs.field(default=None, metadata=wire("AppID"))
    title: str | None = attrs.field(default=None, metadata=wire("Title"))
    description: str | None = attrs.field(default=None, metadata=wire("Description"))
    environment: str | None = attrs.field(default=None, metadata=wire("Environment"))
    state: str | None = attrs.field(default=None, metadata=wire("State"))
    user_id: str | None = attrs.field(default=None, metadata=wire("UserID"))
    user_name: str | None = attrs.field(default=None, metadata=wire("UserName"))
    created: datetime | None = attrs.field(default=None, metadata=wire("Created"))
    labels: list[str] = attrs.field(factory=list, metadata=wire("Label", lone=True))
    tags: list[str] = attrs.field(factory=list, metadata=wire("Tag", lone=True))
    comment_count: int = attrs.field(default=0, metadata=wire("Comments"))
    marks: int = attrs.field(default=0, metadata=wire("Marks"))
    is_marked: bool = attrs.field(default=False, metadata=wire("IsMarked"))
    visibility: str | None = attrs.field(default=None, metadata=wire("Visibility"))
    pub_date: datetime | None = attrs.field(default=None, metadata=wire("PubDate"))
    actions: list[Action] = attrs.field(factory=list, metadata=wire("Action", lone=True))
    target_resources: list[TargetResource] = attrs.field(
        factory=list, metadata=wire("TargetResources", unwrap="TargetResource", lone=True)
    )
    image: Image | None = attrs.field(default=None, metadata=wire("Image"))
    comments_preview: CommentsPreview | None = attrs.field(
        default=None, metadata=wire("CommentsPreview")
    )
    link: str | None = attrs.field(default=None, metadata=wire("Link"))
    authoring_user: AuthoringUser | None = attrs.field(
        default=None, metadata=wire("AuthoringUser")
    )
    description_media_type: str | None = attrs.field(
        default=None, metadata=wire("DescriptionMediaType")
    )
    board_item_artifacts: list[dict[str, Any]] = attrs.field(
        factory=list, metadata=wire("BoardItemArtifacts", unwrap="BoardItemArtifact", lone=True)
    )


@attrs.frozen(slots=True)
class AkanaLogin:
    """The answer to ``POST /api/login`` (Akana's LoginResponse); build it with
    :func:`parse_login`, which reads the keys case-insensitively.

    The token itself travels only in cookies, so nothing here is secret. A non-empty
    ``pending_tasks`` (e.g. ``["ChangePassword"]``) means the account cannot use the API
    until the tasks are done in the portal. ``auth_token_valid_until`` is aware UTC, or
    None when the server sent none (or a form that could not be read).

    Example::

        login = parse_login({"userName": "jo", "pendingTasks": []})
        if login.has_pending_tasks: raise LoginError(...)
    """

    user_name: str | None = attrs.field(default=None, metadata=wire("userName"))
    user_fdn: str | None = attrs.field(default=None, metadata=wire("userFDN"))
    login_domain_id: str | None = attrs.field(default=None, metadata=wire("loginDomainID"))
    pending_tasks: list[str] = attrs.field(factory=list, metadata=wire("pendingTasks"))
    auth_token_valid_until: datetime | None = attrs.field(
        default=None, metadata=wire("authTokenValidUntil")
    )

    @property
    def has_pending_tasks(self) -> bool:
        """True when the account must finish tasks in the portal before using the API."""
        return bool(self.pending_tasks)


# Lower-cased wire key -> the wire key the model declares.
_LOGIN_KEYS = {wire_name(f).lower(): wire_name(f) for f in attrs.fields(AkanaLogin)}

#: Keys tried, in order, to name a pending task given as an object.
_TASK_NAME_KEYS = ("name", "type", "task", "taskname", "tasktype", "id", "description")
_TASK_TEXT_LIMIT = 80
#: Epoch numbers above this are milliseconds (1e11 seconds is the year 5138).
_MILLIS_THRESHOLD = 1e11
_JAVA_DATE = re.compile(
    r"^[A-Z][a-z]{2} (?P<mon>[A-Z][a-z]{2}) (?P<day>\d{1,2}) (?P<time>\d\d:\d\d:\d\d) "
    r"(?P<zone>UTC|GMT|Z) (?P<year>\d{4})$"
)


def parse_login(obj: Any, *, url: str = "", body: bytes | None = None) -> AkanaLogin:
    """Structure a decoded LoginResponse into :class:`AkanaLogin`.

    Keys are matched case-insensitively (``userName``, ``UserName`` and ``username`` are
    the same key: the casing the server uses is unconfirmed). ``pendingTasks`` entries
    may be strings or objects; each becomes a short string (an object's name, type or
    description, else its compact JSON). ``authTokenValidUntil`` may be ISO 8601, epoch
    seconds or milliseconds (number or digit string), RFC 1123, or Java's
    ``Date.toString()`` form; anything else reads as None rather than failing the login.
    A body of the wrong shape raises :class:`~arena_async.errors.ResponseFormatError`.

    Example::

        parse_login({"UserName": "jo", "PendingTasks": [{"name": "ChangePassword"}]})
        # AkanaLogin(user_name='jo', ..., pending_tasks=['ChangePassword'], ...)
    """
    if not isinstance(obj, Mapping):
        return structure(obj, AkanaLogin, url=url, body=body)  # raises ResponseFormatError
    normalized: dict[str, Any] = {}
    for key, value in obj.items():
        canonical = _LOGIN_KEYS.get(key.lower()) if isinstance(key, str) else None
        if canonical is not None and canonical not in normalized:
            normalized[canonical] = value
    if "pendingTasks" in normalized:
        normalized["pendingTasks"] = _pending_tasks(normalized["pendingTasks"])
    if "authTokenValidUntil" in normalized:
        when = _valid_until(normalized["authTokenValidUntil"])
        if when is None:
            del normalized["authTokenValidUntil"]
        else:
            normalized["authTokenValidUntil"] = when.isoformat()
    return structure(normalized, AkanaLogin, url=url, body=body)


def _pending_tasks(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str | Mapping):
        # A lone task, or an XML-style wrapper such as {"pendingTask": [...]}.
        if isinstance(value, Mapping) and len(value) == 1:
            (inner,) = value.values()
            if isinstance(inner, list):
                return [_task_text(task) for task in inner]
        return [_task_text(value)]
    if isinstance(value, list):
        return [_task_text(task) for task in value]
    return [_task_text(value)]


def _task_text(task: Any) -> str:
    if isinstance(task, str):
        return task
    if isinstance(task, Mapping):
        lowered = {str(k).lower(): v for k, v in task.items()}
        for key in _TASK_NAME_KEYS:
            named = lowered.get(key)
            if isinstance(named, str) and named:
                return named
        text = json.dumps(task, sort_keys=True, separators=(",", ":"), default=str)
    else:
        text = json.dumps(task, default=str)
    return text if len(text) <= _TASK_TEXT_LIMIT else text[: _TASK_TEXT_LIMIT - 1] + "…"


def _valid_until(value: Any) -> datetime | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return _from_epoch(float(text))
    parsed: datetime | None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = _other_date(text)
    if parsed is None:
        logger.debug("authTokenValidUntil in an unknown form; ignored")
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _from_epoch(number: float) -> datetime | None:
    seconds = number / 1000.0 if abs(number) >= _MILLIS_THRESHOLD else number
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _other_date(text: str) -> datetime | None:
    match = _JAVA_DATE.match(text)
    if match:
        try:
            return datetime.strptime(
                f"{match['day']} {match['mon']} {match['year']} {match['time']}",
                "%d %b %Y %H:%M:%S",
            ).replace(tzinfo=UTC)
        except ValueError:
            return None
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
