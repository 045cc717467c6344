"""Akana models: the documented sample, omissions, unknown keys, wrong types, login parsing."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from arena_async._convert import structure
from arena_async.errors import ResponseFormatError
from arena_async.models.akana import (
    TICKETS_KEY,
    Action,
    AkanaLogin,
    AuthoringUser,
    Comment,
    CommentsPreview,
    Image,
    TargetResource,
    Ticket,
    parse_login,
)

HERE = Path(__file__).resolve().parent
SAMPLE_FILE = HERE / "data" / "akana_tickets_sample.json"
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SEED_FILE = SHARED / "seeds" / "001_e7608a737f671dd3.txt"
SEED_MARKER = "Sample response body: application/vnd.soa.v72+json"

USER = "a71553bd-5ac5-4230-aa6d-c315bae0f781.acmepaymentscorp"
API_VERSION = "037a3fad-45ba-4126-aae4-84a9dadae89e.acmepaymentscorp"
API = "b28f3b3b-4c54-4ccf-a4db-55abc7a467f0.acmepaymentscorp"
AVATAR = f"http://{{hostname}}/api/users/{USER}/avatar"


def _seed_sample() -> dict[str, Any]:
    if not SEED_FILE.is_file():
        pytest.skip(f"the shared seed page is absent ({SEED_FILE})")
    text = SEED_FILE.read_text(encoding="utf-8")
    start = text.index("{", text.index(SEED_MARKER))
    body, _ = json.JSONDecoder().raw_decode(text[start:])
    assert isinstance(body, dict)
    return body


def _embedded_sample() -> dict[str, Any]:
    body = json.loads(SAMPLE_FILE.read_text(encoding="utf-8"))
    assert isinstance(body, dict)
    return body


SOURCES: dict[str, Callable[[], dict[str, Any]]] = {
    "embedded": _embedded_sample,
    "shared-seed": _seed_sample,
}


def _tickets(body: Any) -> list[Ticket]:
    """Structure a ``{"Ticket": [...]}`` envelope the way the client's paths name it."""
    return structure(body[TICKETS_KEY], list[Ticket], path=f"$.{TICKETS_KEY}")


def _expected_image_user() -> AuthoringUser:
    return AuthoringUser(
        user_id=USER,
        name="adminAcmepaymentscorp",
        image=Image(url=AVATAR, link=f"#/users/{USER}/details", title="adminAcmepaymentscorp"),
    )


EXPECTED_FIRST = Ticket(
    ticket_id="ticket11623.acmepaymentscorp",
    api_id=API_VERSION,
    app_id=None,
    title="Bug when using multiple payment types",
    description="When I try to use **more than one payment type** the transaction hangs up.",
    environment="Production",
    state="OPEN",
    user_id=USER,
    user_name=None,
    created=datetime(2015, 5, 12, 17, 27, 6, tzinfo=UTC),
    labels=["com.soa.ticket.label.priority.high"],
    tags=["bug", "payment"],
    comment_count=0,
    marks=0,
    is_marked=False,
    visibility="Limited",
    pub_date=datetime(2015, 5, 12, 17, 27, 6, tzinfo=UTC),
    actions=[Action(value="discussion.action.delete", label="discussion.action.delete")],
    target_resources=[
        TargetResource(name="ACME Payments API", id=API, type="api"),
        TargetResource(name="1.0", id=API_VERSION, type="apiversion"),
    ],
    image=Image(url=AVATAR, link=f"../acmepaymentscorp#/user/{USER}/details", title=None),
    comments_preview=CommentsPreview(count=0, comments=[]),
    link="../acmepaymentscorp#/forum/discussions/ticket11623.acmepaymentscorp/details",
    authoring_user=_expected_image_user(),
    description_media_type="text/markdown",
    board_item_artifacts=[],
)

EXPECTED_SECOND = attrs.evolve(
    EXPECTED_FIRST,
    ticket_id="ticket11622.acmepaymentscorp",
    title="Cannot log in after timeout",
    description=(
        "After a timeout, users cannot log back in. Password reset is the only way I've "
        "been able to figure to get a user back in."
    ),
    created=datetime(2015, 5, 12, 17, 6, 8, tzinfo=UTC),
    tags=["login", "timeout"],
    pub_date=datetime(2015, 5, 12, 17, 6, 8, tzinfo=UTC),
    link="../acmepaymentscorp#/forum/discussions/ticket11622.acmepaymentscorp/details",
    description_media_type="text/plain",
)


def test_embedded_copy_matches_the_shared_seed() -> None:
    assert _embedded_sample() == _seed_sample()


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_sample_structures_with_every_field_exact(source: str) -> None:
    tickets = _tickets(SOURCES[source]())

    assert len(tickets) == 2
    first, second = tickets
    assert first == EXPECTED_FIRST
    assert second == EXPECTED_SECOND
    # Field by field too, so a failure names the field (and == cannot hide a new one).
    expected_values = attrs.asdict(EXPECTED_FIRST, recurse=False)
    assert set(expected_values) == {f.name for f in attrs.fields(Ticket)}
    for name, value in expected_values.items():
        assert getattr(first, name) == value, name
    assert type(first.comment_count) is int
    assert type(first.is_marked) is bool


def test_sample_datetimes_are_aware_utc() -> None:
    first = _tickets(_embedded_sample())[0]
    for value in (first.created, first.pub_date):
        assert isinstance(value, datetime)
        assert value.tzinfo is not None
        assert value.utcoffset() == timedelta(0)
        assert value.isoformat() == "2015-05-12T17:27:06+00:00"


def test_created_in_another_offset_is_converted_to_utc() -> None:
    ticket: Ticket = structure({"TicketID": "x", "Created": "2015-05-12T19:27:06+02:00"}, Ticket)
    assert ticket.created == datetime(2015, 5, 12, 17, 27, 6, tzinfo=UTC)
    assert ticket.created is not None
    assert ticket.created.tzinfo is UTC


def test_minimal_ticket_gets_defaults() -> None:
    ticket: Ticket = structure({"TicketID": "x"}, Ticket)

    assert ticket == Ticket(ticket_id="x")
    assert ticket.ticket_id == "x"
    for name in ("api_id", "app_id", "title", "description", "environment", "state",
                 "user_id", "user_name", "created", "visibility", "pub_date", "image",
                 "comments_preview", "link", "authoring_user", "description_media_type"):
        assert getattr(ticket, name) is None, name
    for name in ("labels", "tags", "actions", "target_resources", "board_item_artifacts"):
        assert getattr(ticket, name) == [], name
    assert (ticket.comment_count, ticket.marks, ticket.is_marked) == (0, 0, False)


def test_default_lists_are_not_shared_between_instances() -> None:
    one, two = Ticket(ticket_id="a"), Ticket(ticket_id="b")
    assert one.labels is not two.labels
    assert one.target_resources is not two.target_resources


def test_models_are_frozen_and_slotted() -> None:
    ticket = Ticket(ticket_id="x")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ticket.title = "changed"  # type: ignore[misc]
    instances: list[object] = [ticket, Action(), TargetResource(), Image(), CommentsPreview(),
                               Comment(), AuthoringUser(), AkanaLogin()]
    for instance in instances:
        assert "__slots__" in type(instance).__dict__, type(instance)
        assert not hasattr(instance, "__dict__"), type(instance)


def test_unknown_fields_are_ignored_at_every_level() -> None:
    body = _embedded_sample()
    ticket = body["Ticket"][0]
    ticket["BrandNewField"] = {"anything": [1, 2]}
    ticket["TargetResources"]["Extra"] = "ignored"
    ticket["TargetResources"]["TargetResource"][0]["Version"] = 3
    ticket["Image"]["Width"] = 64
    ticket["AuthoringUser"]["Email"] = "someone@example.com"
    ticket["CommentsPreview"]["More"] = True
    ticket["Action"][0]["url"] = "/x"

    assert _tickets(body)[0] == EXPECTED_FIRST


def test_wrappers_given_as_bare_lists_are_accepted() -> None:
    ticket: Ticket = structure(
        {"TicketID": "x",
         "TargetResources": [{"Name": "n", "ID": "i", "Type": "api"}],
         "BoardItemArtifacts": [{"FileName": "f"}]},
        Ticket,
    )
    assert ticket.target_resources == [TargetResource(name="n", id="i", type="api")]
    assert ticket.board_item_artifacts == [{"FileName": "f"}]


def test_empty_wrapper_object_gives_empty_list() -> None:
    ticket: Ticket = structure({"TicketID": "x", "TargetResources": {}, "BoardItemArtifacts": {}},
                       Ticket)
    assert ticket.target_resources == []
    assert ticket.board_item_artifacts == []


def test_board_item_artifacts_are_kept_raw() -> None:
    artifact = {"ContextID": "c.acme", "FileName": "notes", "BaseUri": "http://h",
                "UriPath": "/api/boards/items/x", "Size": 12, "Nested": {"a": [1]}}
    ticket: Ticket = structure(
        {"TicketID": "x", "BoardItemArtifacts": {"BoardItemArtifact": [artifact]}}, Ticket
    )
    assert ticket.board_item_artifacts == [artifact]


def test_comments_preview_with_comments() -> None:
    preview = {
        "Count": 5,
        "Comment": [
            {"CommentID": "c1.acme", "CommentSubjectID": "ticket1.acme", "Content": "first",
             "Created": "2015-05-13T01:06:41Z", "Marks": 1, "IsMarked": True,
             "UserID": "u1.acme", "UserName": "jo",
             "AuthoringUser": {"UserID": "u1.acme", "Name": "jo"}, "Unknown": 1},
            {"Text": "second, from an older server", "UserName": "sam"},
            {},
        ],
    }
    ticket: Ticket = structure({"TicketID": "x", "CommentsPreview": preview}, Ticket)

    assert ticket.comments_preview == CommentsPreview(
        count=5,
        comments=[
            Comment(comment_id="c1.acme", subject_id="ticket1.acme", content="first",
                    user_id="u1.acme", user_name="jo",
                    created=datetime(2015, 5, 13, 1, 6, 41, tzinfo=UTC), marks=1,
                    is_marked=True, authoring_user=AuthoringUser(user_id="u1.acme", name="jo")),
            Comment(content="second, from an older server", user_name="sam"),
            Comment(),
        ],
    )


def _mutate(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(body: dict[str, Any]) -> None:
        target: Any = body
        for key in path[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return apply


_DELETE = object()


@pytest.mark.parametrize(
    ("mutation", "path", "reason"),
    [
        (_mutate(["Ticket", 0, "TargetResources", "TargetResource", 1, "Name"], 5),
         "$.Ticket[0].TargetResources.TargetResource[1].Name", "expected a string, got int 5"),
        (_mutate(["Ticket", 0, "Comments"], "3"),
         "$.Ticket[0].Comments", "expected an integer, got str '3'"),
        (_mutate(["Ticket", 1, "Comments"], True),
         "$.Ticket[1].Comments", "expected an integer, got bool True"),
        (_mutate(["Ticket", 0, "IsMarked"], "false"),
         "$.Ticket[0].IsMarked", "expected a boolean, got str 'false'"),
        (_mutate(["Ticket", 0, "Created"], "yesterday"),
         "$.Ticket[0].Created", "expected an ISO 8601 date-time"),
        (_mutate(["Ticket", 1, "PubDate"], 1431451626),
         "$.Ticket[1].PubDate", "expected a date-time string, got int"),
        (_mutate(["Ticket", 0, "Label"], ["ok", 1]),
         "$.Ticket[0].Label[1]", "expected a string, got int 1"),
        (_mutate(["Ticket", 1, "CommentsPreview", "Comment"], [{"Created": 5}]),
         "$.Ticket[1].CommentsPreview.Comment[0].Created", "expected a date-time string"),
        (_mutate(["Ticket", 0, "AuthoringUser", "Image"], "x"),
         "$.Ticket[0].AuthoringUser.Image", "expected an object, got str 'x'"),
        (_mutate(["Ticket", 0, "TicketID"], _DELETE),
         "$.Ticket[0].TicketID", "required key is missing"),
        (_mutate(["Ticket", 0, "TicketID"], None),
         "$.Ticket[0].TicketID", "expected a string, got NoneType None"),
        (_mutate(["Ticket", 1], "x"), "$.Ticket[1]", "expected an object, got str 'x'"),
        (_mutate(["Ticket", 0, "Action", 0, "value"], ["x"]),
         "$.Ticket[0].Action[0].value", "expected a string, got list"),
        (_mutate(["Ticket", 1, "BoardItemArtifacts", "BoardItemArtifact"], [{"k": 1}, {2: 3}]),
         "$.Ticket[1].BoardItemArtifacts.BoardItemArtifact[1][2]", "expected a string"),
    ],
)
def test_wrong_types_raise_response_format_error_naming_the_wire_path(
    mutation: Callable[[dict[str, Any]], None], path: str, reason: str
) -> None:
    body = copy.deepcopy(_embedded_sample())
    mutation(body)

    with pytest.raises(ResponseFormatError) as info:
        _tickets(body)

    assert info.value.path == path
    assert reason in str(info.value)
    assert f"at {path}" in str(info.value)


def test_a_lone_item_where_a_list_is_expected_is_a_one_item_list() -> None:
    # XML-to-JSON mappers write one-element lists as the element itself.
    ticket = structure({
        "TicketID": "x", "Label": "com.soa.ticket.label.priority.high", "Tag": "bug",
        "Action": {"value": "v", "label": "l"},
        "TargetResources": {"TargetResource": {"Name": "API", "ID": "i", "Type": "api"}},
        "CommentsPreview": {"Count": 1, "Comment": {"CommentID": "c1"}},
    }, Ticket)
    assert ticket.labels == ["com.soa.ticket.label.priority.high"]
    assert ticket.tags == ["bug"]
    assert ticket.actions == [Action("v", "l")]
    assert [r.name for r in ticket.target_resources] == ["API"]
    assert ticket.comments_preview is not None
    assert [c.comment_id for c in ticket.comments_preview.comments] == ["c1"]


def test_a_wrong_lone_item_is_still_refused() -> None:
    with pytest.raises(ResponseFormatError) as info:
        structure({"TicketID": "x", "Action": "delete"}, Ticket)
    assert info.value.path == "$.Action[0]"


def test_arena_lists_stay_strict() -> None:
    from arena_async.models.arena import ItemReference

    with pytest.raises(ResponseFormatError, match="expected a list"):
        structure({"guid": "g", "item": {"guid": "i"}}, list[ItemReference])


# ---------------------------------------------------------------------- login


VALID_UNTIL = datetime(2015, 5, 12, 17, 57, 6, tzinfo=UTC)


def test_login_response_structures() -> None:
    login = parse_login({
        "userName": "adminAcmepaymentscorp",
        "userFDN": "a71553bd.acmepaymentscorp",
        "loginDomainID": "acme-domain.acmepaymentscorp",
        "pendingTasks": [],
        "authTokenValidUntil": "2015-05-12T17:57:06Z",
        "somethingNew": {"x": 1},
    })
    assert login == AkanaLogin(
        user_name="adminAcmepaymentscorp",
        user_fdn="a71553bd.acmepaymentscorp",
        login_domain_id="acme-domain.acmepaymentscorp",
        pending_tasks=[],
        auth_token_valid_until=VALID_UNTIL,
    )
    assert login.has_pending_tasks is False


@pytest.mark.parametrize(
    "keys",
    [
        ("userName", "userFDN", "loginDomainID", "pendingTasks", "authTokenValidUntil"),
        ("UserName", "UserFDN", "LoginDomainID", "PendingTasks", "AuthTokenValidUntil"),
        ("username", "userfdn", "logindomainid", "pendingtasks", "authtokenvaliduntil"),
        ("USERNAME", "USERFDN", "LOGINDOMAINID", "PENDINGTASKS", "AUTHTOKENVALIDUNTIL"),
        ("userName", "UserFdn", "loginDomainId", "PendingTasks", "authTokenValidUntil"),
    ],
    ids=["camel", "pascal", "lower", "upper", "mixed"],
)
def test_login_keys_are_matched_case_insensitively(keys: tuple[str, ...]) -> None:
    values = ("jo", "u1.acme", "d.acme", ["ChangePassword"], "2015-05-12T17:57:06Z")
    login = parse_login(dict(zip(keys, values, strict=True)))
    assert login == AkanaLogin("jo", "u1.acme", "d.acme", ["ChangePassword"], VALID_UNTIL)


def test_login_first_spelling_of_a_duplicated_key_wins() -> None:
    assert parse_login({"userName": "first", "UserName": "second"}).user_name == "first"


def test_login_with_no_keys_gives_defaults() -> None:
    assert parse_login({}) == AkanaLogin()
    assert AkanaLogin().pending_tasks == []


@pytest.mark.parametrize(
    ("tasks", "expected"),
    [
        (["ChangePassword", "AcceptAgreement"], ["ChangePassword", "AcceptAgreement"]),
        ([{"name": "ChangePassword", "url": "/x"}], ["ChangePassword"]),
        ([{"Type": "AcceptAgreement"}], ["AcceptAgreement"]),
        ([{"Description": "Please verify your email"}], ["Please verify your email"]),
        ([{"code": 7, "when": "now"}], ['{"code":7,"when":"now"}']),
        ([{"name": ""}, 42], ['{"name":""}', "42"]),
        ("ChangePassword", ["ChangePassword"]),
        ({"pendingTask": ["ChangePassword", {"name": "Verify"}]}, ["ChangePassword", "Verify"]),
        ({"name": "ChangePassword"}, ["ChangePassword"]),
        (None, []),
        ([{"blob": "x" * 200}], ['{"blob":"' + "x" * 70 + "…"]),
    ],
)
def test_login_pending_tasks_become_short_strings(tasks: Any, expected: list[str]) -> None:
    login = parse_login({"pendingTasks": tasks})
    assert login.pending_tasks == expected
    assert login.has_pending_tasks is bool(expected)
    assert all(len(task) <= 80 for task in login.pending_tasks)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2015-05-12T17:57:06Z", VALID_UNTIL),
        ("2015-05-12T17:57:06", VALID_UNTIL),
        ("2015-05-12T19:57:06+02:00", VALID_UNTIL),
        ("2015-05-12T17:57:06.000+0000", VALID_UNTIL),
        (1431453426000, VALID_UNTIL),
        (1431453426, VALID_UNTIL),
        (1431453426000.0, VALID_UNTIL),
        ("1431453426000", VALID_UNTIL),
        ("Tue, 12 May 2015 17:57:06 GMT", VALID_UNTIL),
        ("Tue May 12 17:57:06 UTC 2015", VALID_UNTIL),
        ("next tuesday", None),
        ("", None),
        (True, None),
        ({"when": 1}, None),
        (None, None),
    ],
)
def test_login_valid_until_accepts_iso_and_epoch(value: Any, expected: datetime | None) -> None:
    login = parse_login({"authTokenValidUntil": value, "userName": "jo"})
    assert login.auth_token_valid_until == expected
    assert login.user_name == "jo"
    if expected is not None:
        assert login.auth_token_valid_until is not None
        assert login.auth_token_valid_until.tzinfo is UTC


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"UserName": 5}, "$.userName"),
        ({"loginDomainID": ["x"]}, "$.loginDomainID"),
        (["userName"], "$"),
        ("not an object", "$"),
        (None, "$"),
    ],
)
def test_login_of_the_wrong_shape_raises(body: Any, path: str) -> None:
    with pytest.raises(ResponseFormatError) as info:
        parse_login(body, url="/api/login")
    assert info.value.path == path
    assert info.value.url == "/api/login"
