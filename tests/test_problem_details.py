"""Error text from RFC 9457 problem details (``{"type", "title", "status", "detail"}``),
over real loopback HTTP: the title is said, the detail too when there is one, and the
message never ends in a dangling separator.
"""

from __future__ import annotations

from typing import Any

import pytest

from arena_async import AkanaClient, APIError, ArenaClient, BadRequestError, ErrorDetail
from arena_async.testing import FakeAkana, FakeArena, Fault

GUID = "ABCDEFGHIJKLMNOPQRST"
PATH = f"GET /items/{GUID}/tickets"


def problem(**fields: Any) -> dict[str, Any]:
    return {"type": "about:blank", "status": 400, **fields}


@pytest.mark.parametrize(("body", "said"), [
    (problem(title="Bad Request", detail=""), "Bad Request"),
    (problem(title="Bad Request"), "Bad Request"),
    (problem(title="Bad Request", detail="   "), "Bad Request"),
    (problem(title="  Bad Request \n", detail="limit must be 1..400"),
     "Bad Request: limit must be 1..400"),  # the title's own spaces are not said
    (problem(title="Bad Request", detail="limit must be 1..400"),
     "Bad Request: limit must be 1..400"),
    (problem(title="", detail="limit must be 1..400"), "limit must be 1..400"),
    (problem(detail="limit must be 1..400"), "limit must be 1..400"),
    # A detail that already says the title is not said twice.
    (problem(title="Bad Request", detail="Bad request: limit"), "Bad request: limit"),
])
async def test_arena_says_the_title_and_the_detail(body: dict[str, Any], said: str) -> None:
    async with FakeArena() as fake:
        fake.faults.add(Fault("status", status=400, body=body, path="/tickets"))
        async with ArenaClient(email=fake.email, password=fake.password,
                               base_url=fake.url) as arena:
            with pytest.raises(BadRequestError) as info:
                await arena.items.tickets.list(GUID)
    assert str(info.value) == f"HTTP 400 from {PATH} - {said}"
    assert info.value.errors == [ErrorDetail(code=None, message=said)]


async def test_a_problem_with_neither_title_nor_detail_keeps_the_body() -> None:
    async with FakeArena() as fake:
        fake.faults.add(Fault("status", status=400, body=problem(title="", detail=""),
                              path="/tickets"))
        async with ArenaClient(email=fake.email, password=fake.password,
                               base_url=fake.url) as arena:
            with pytest.raises(BadRequestError) as info:
                await arena.items.tickets.list(GUID)
    text = str(info.value)
    assert text.startswith(f"HTTP 400 from {PATH} - body: ")
    assert '"type": "about:blank"' in text
    assert not text.endswith(" - ")


async def test_akana_says_the_title_too() -> None:
    async with FakeAkana() as fake:
        fake.faults.add(Fault("status", status=400, path="/api/tickets/",
                              body=problem(title="Bad Request", detail="")))
        async with AkanaClient(base_url=fake.url, email=fake.email,
                               password=fake.password) as akana:
            with pytest.raises(APIError) as info:
                await akana.tickets.get("ticket1.acmepaymentscorp")
    assert str(info.value).endswith("- Bad Request")
    assert " -  " not in str(info.value)


@pytest.mark.parametrize("errors", [[ErrorDetail(None, "")], [ErrorDetail(None, "  ")]])
def test_an_empty_entry_never_leaves_a_dangling_separator(errors: list[ErrorDetail]) -> None:
    assert str(APIError(400, errors, method="GET", url="/x")) == "HTTP 400 from GET /x"
    assert str(APIError(400, [*errors, ErrorDetail(3011, "")], method="GET", url="/x")) \
        == "HTTP 400 from GET /x - code 3011"
