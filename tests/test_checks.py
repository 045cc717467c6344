"""``arena_async._checks``: one rule per kind of argument, the same message wherever it is
used, and the clients and the limiter agree (infinity is no rate)."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from arena_async import (
    AkanaClient,
    ArenaClient,
    CachePolicy,
    QuotaPolicy,
    RedisShare,
    SQLiteShare,
)
from arena_async._checks import (
    check_deadline,
    check_flag,
    check_int,
    check_max_items,
    check_offset,
    check_optional_flag,
    check_page_size,
    check_positive_int,
    check_rate,
    check_text,
    check_timeout,
)
from arena_async._limiter import Limiter
from arena_async.bulk import BulkRun

NOT_INTEGERS = [True, False, 1.0, "1", None, [1]]


@pytest.mark.parametrize("bad", NOT_INTEGERS)
def test_integers_refuse_bools_floats_and_strings(bad: object) -> None:
    with pytest.raises(ValueError, match=r"^n must be an integer >= 0, got "):
        check_int("n", bad, minimum=0)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: check_int("n", -1, minimum=0), "n must be >= 0, got -1"),
    (lambda: check_int("n", 0, minimum=1), "n must be an integer >= 1, got 0"),
    (lambda: check_int("n", 5, minimum=1, maximum=4), "n must be 1..4, got 5"),
    (lambda: check_int("n", "5", minimum=1, maximum=4), "n must be an integer in 1..4, got '5'"),
    (lambda: check_int("n", -1, minimum=0, optional=True),
     "n must be None or an integer >= 0, got -1"),
    (lambda: check_positive_int("max_concurrency", 0),
     "max_concurrency must be an integer >= 1, got 0"),
    (lambda: check_page_size(0, maximum=400), "page_size must be 1..400, got 0"),
    (lambda: check_page_size(401, maximum=400), "page_size must be 1..400, got 401"),
    (lambda: check_page_size(0, maximum=None), "page_size must be an integer >= 1, got 0"),
    (lambda: check_page_size(True, maximum=None), "page_size must be an integer >= 1, got True"),
    (lambda: check_offset("offset", -1), "offset must be >= 0, got -1"),
    (lambda: check_offset("start", "3"), "start must be an integer >= 0, got '3'"),
    (lambda: check_max_items(True), "max_items must be None or an integer >= 0, got True"),
    (lambda: check_timeout(0), "timeout must be a finite number of seconds > 0, got 0"),
    (lambda: check_timeout(math.inf), "timeout must be a finite number of seconds > 0, got inf"),
    (lambda: check_deadline(math.nan), "deadline must be a finite number of seconds > 0, got nan"),
    (lambda: check_deadline(True), "deadline must be a finite number of seconds > 0, got True"),
    (lambda: check_rate(math.inf),
     "requests_per_second must be a finite number > 0 or None (None: no cap), got inf"),
    (lambda: check_rate(0), "requests_per_second must be a finite number > 0 or None "
                            "(None: no cap), got 0"),
    (lambda: check_rate(True), "requests_per_second must be a finite number > 0 or None "
                               "(None: no cap), got True"),
    (lambda: check_flag("allow_insecure", 1), "allow_insecure must be True or False, got 1"),
    (lambda: check_optional_flag("tag", "yes"), "tag must be True, False or None, got 'yes'"),
    (lambda: check_text("name", 5), "name must be a string or None, got int"),
    (lambda: check_text("name", ""), "name must not be empty (None leaves the filter out)"),
    (lambda: check_text("name", " ", blank=False),
     "name must not be empty or blank (None leaves the filter out)"),
])
def test_messages(call: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        call()
    assert str(caught.value) == message


def test_accepted_values_come_back() -> None:
    assert check_int("n", 0, minimum=0) == 0
    assert check_int("n", 4, minimum=1, maximum=4) == 4
    assert check_int("n", None, minimum=0, optional=True) is None
    assert check_positive_int("c", 1) == 1
    assert check_page_size(400, maximum=400) == 400
    assert check_page_size(10_000, maximum=None) == 10_000
    assert check_offset("start", 0) == 0
    assert check_max_items(None) is None
    assert check_max_items(0) == 0
    assert check_timeout(1) == 1.0
    assert type(check_timeout(1)) is float
    assert check_deadline(None) is None
    assert check_deadline(0.5) == 0.5
    assert check_rate(None) is None
    assert check_rate(2) == 2.0
    assert check_flag("f", False) is False
    assert check_optional_flag("f", None) is None
    assert check_text("t", " x ") == " x "
    assert check_text("t", " ") == " "  # blank is allowed unless blank=False
    assert check_text("t", None) is None


@pytest.mark.parametrize("size", [0, 401, -1, True, 1.5, "10", None])
def test_page_size_bounds(size: object) -> None:
    with pytest.raises(ValueError, match=r"^page_size must be "):
        check_page_size(size, maximum=400)


@pytest.mark.parametrize("bad", [0, -1, math.inf, math.nan, True, "3"])
def test_deadline_refusals(bad: object) -> None:
    with pytest.raises(ValueError, match=r"^deadline must be a finite number of seconds > 0, got "):
        check_deadline(bad)


@pytest.mark.parametrize(("make", "name"), [
    (lambda v: ArenaClient(session_id="s", base_url="http://127.0.0.1:9", timeout=v),
     "timeout"),
    (lambda v: AkanaClient(base_url="http://127.0.0.1:9", auth_token="t", tenant="x",
                           timeout=v), "timeout"),
    (lambda v: RedisShare("redis://h:1/0", timeout=v), "timeout"),
    (lambda v: RedisShare("redis://h:1/0", outage_wait=v), "outage_wait"),
    (lambda v: SQLiteShare("/tmp/x.db", lease_ttl=v), "lease_ttl"),
    (lambda v: QuotaPolicy(max_wait=v), "max_wait"),
    (lambda v: CachePolicy(ttl=v), "ttl"),
    (check_deadline, "deadline"),
])
def test_every_number_of_seconds_says_it_must_be_finite(make: Any, name: str) -> None:
    for infinite in (math.inf, -math.inf, math.nan):
        with pytest.raises(ValueError, match=rf"^{name} must be a finite number ") as info:
            make(infinite)
        assert repr(infinite) in str(info.value)


@pytest.mark.parametrize("bad", [-1, True, 1.5, "3"])
def test_max_items_refusals(bad: object) -> None:
    with pytest.raises(ValueError, match=r"^max_items must be None or an integer >= 0, got "):
        check_max_items(bad)


def test_accepted_deadlines_and_caps() -> None:
    assert check_deadline(2) == 2.0
    assert type(check_deadline(2)) is float
    assert check_deadline(0.001) == 0.001
    assert check_max_items(5) == 5
    assert check_page_size(1, maximum=400) == 1


@pytest.mark.parametrize("rate", [math.inf, -math.inf, math.nan, 0, -1, True, "5"])
def test_the_clients_and_the_limiter_agree_on_the_rate(rate: object) -> None:
    with pytest.raises(ValueError, match="requests_per_second must be a finite number"):
        Limiter(max_concurrency=1, requests_per_second=rate)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="requests_per_second must be a finite number"):
        ArenaClient(session_id="s", base_url="http://127.0.0.1:9",
                    requests_per_second=rate)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="requests_per_second must be a finite number"):
        AkanaClient(base_url="http://127.0.0.1:9", auth_token="t", tenant="x",
                    requests_per_second=rate)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, True, 1.5])
def test_every_concurrency_is_the_same_rule(bad: object) -> None:
    async def fn(key: int) -> int:
        return key

    expected = f"must be an integer >= 1, got {bad!r}"
    with pytest.raises(ValueError, match=f"^concurrency {expected}$"):
        BulkRun(fn, [1], concurrency=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=f"^max_concurrency {expected}$"):
        Limiter(max_concurrency=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=f"^max_concurrency {expected}$"):
        ArenaClient(session_id="s", base_url="http://127.0.0.1:9",
                    max_concurrency=bad)  # type: ignore[arg-type]


# -- ticket filters: declared once (TicketFilters), checked and encoded from that table ---

def test_ticket_filters_are_declared_once_and_shown_everywhere() -> None:
    import inspect
    from typing import get_type_hints

    from arena_async.akana.tickets import TicketFilters, Tickets

    declared = get_type_hints(TicketFilters)
    assert list(declared) == ["api_id", "app_id", "retrieving_user_id", "author_id",
                              "item_id", "tag", "label", "state", "include_comments",
                              "number_of_comments", "include_actions", "sort_by"]
    for method in (Tickets.pages, Tickets.iter, Tickets.list):
        params = inspect.signature(method).parameters
        shown = {name: p.annotation for name, p in params.items() if name in declared}
        assert shown == declared, method  # every filter, with its type, in help()
        assert all(params[name].default is None for name in declared)
        assert all(params[name].kind is inspect.Parameter.KEYWORD_ONLY for name in declared)


def test_ticket_params_encode_in_wire_order_and_check_each_filter() -> None:
    from arena_async.akana.tickets import ticket_params

    assert list(ticket_params(sort_by="created", state="OPEN", include_comments=False,
                              number_of_comments=0, api_id="api1", tag=None)) == \
        ["APIID", "State", "IncludeComments", "NumberOfComments", "SortBy"]
    assert ticket_params(include_actions=True, number_of_comments=3) == \
        {"IncludeActions": "true", "NumberOfComments": "3"}
    assert ticket_params() == {}
    for bad, message in [
        ({"state": " "}, "state must not be empty or blank"),
        ({"label": 5}, "label must be a string or None, got int"),
        ({"include_comments": "true"}, "include_comments must be True, False or None"),
        ({"number_of_comments": -1}, "number_of_comments must be None or an integer >= 0"),
        ({"number_of_comments": True}, "number_of_comments must be None or an integer >= 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            ticket_params(**bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unexpected keyword argument 'status'"):
        ticket_params(status="OPEN")  # type: ignore[call-arg]


async def test_an_unknown_ticket_filter_is_refused_before_anything_is_sent() -> None:
    from arena_async.testing import FakeAkana

    async with FakeAkana() as fake, AkanaClient(
            base_url=fake.url, email=fake.email, password=fake.password) as akana:
        before = len(fake.requests)
        with pytest.raises(TypeError, match="'stat'"):
            akana.tickets.pages(stat="OPEN")  # type: ignore[call-arg]
        with pytest.raises(ValueError, match="state must not be empty or blank"):
            await akana.tickets.list(state="")
        assert len(fake.requests) == before


@pytest.mark.parametrize(("url", "words"), [
    ("http://127.0.0.1:99999/v1", "bad host or port: Port out of range"),
    ("https://a..b/v1", "bad host or port"),
])
def test_a_base_url_with_a_bad_host_or_port_is_refused_when_built(url: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        ArenaClient(email="e", password="p", base_url=url)
    with pytest.raises(ValueError, match=re.escape(words)):
        AkanaClient(email="e", password="p", base_url=url)
