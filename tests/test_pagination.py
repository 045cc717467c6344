"""Offset/limit and start/count pagination (`arena_async._pagination`).

`paginate` is tested on a fetch that serves a list the way the servers do (and the ways
they misbehave), counting the requests; then once end to end against FakeArena serving a
page longer than asked for.
"""

from __future__ import annotations

import pytest

from arena_async import ArenaClient, NotFoundError
from arena_async._pagination import paginate, records
from arena_async.errors import ArenaAsyncError
from arena_async.models.common import Page
from arena_async.testing import FakeArena, Fault


class Server:
    """Serves ``total`` numbered records by offset and limit; ``extra`` more than asked for
    (a server that ignores the limit); logs every request."""

    def __init__(self, total: int, *, extra: int = 0, fail_at: int | None = None) -> None:
        self.data = list(range(total))
        self.extra = extra
        self.fail_at = fail_at
        self.calls: list[tuple[int, int]] = []

    async def fetch(self, offset: int, limit: int) -> list[int]:
        self.calls.append((offset, limit))
        if offset == self.fail_at:
            raise NotFoundError(404, method="GET", url="/x")
        return self.data[offset:offset + limit + self.extra]


async def pages_of(server: Server, **kw: object) -> list[Page[int]]:
    kw.setdefault("offset", 0)
    kw.setdefault("max_items", None)
    return [p async for p in paginate(server.fetch, **kw)]  # type: ignore[arg-type]


@pytest.mark.parametrize(("total", "size", "calls"), [
    (0, 5, [(0, 5)]),
    (4, 5, [(0, 5)]),
    (5, 5, [(0, 5), (5, 5)]),  # a full last page: one more (empty) page tells the end
    (6, 5, [(0, 5), (5, 5)]),
    (10, 5, [(0, 5), (5, 5), (10, 5)]),
    (3, 1, [(0, 1), (1, 1), (2, 1), (3, 1)]),
])
async def test_pages_until_a_short_page(total: int, size: int,
                                        calls: list[tuple[int, int]]) -> None:
    server = Server(total)
    pages = await pages_of(server, page_size=size)
    assert server.calls == calls
    assert [i for p in pages for i in p.items] == list(range(total))
    assert [p.offset for p in pages] == [c[0] for c in calls]
    assert [p.next_offset for p in pages] == [c[0] + size for c in calls[:-1]] + [None]


async def test_a_page_longer_than_asked_for_is_cut_to_the_limit() -> None:
    server = Server(23, extra=3)  # answers limit + 3 records
    pages = await pages_of(server, page_size=5)
    assert [i for p in pages for i in p.items] == list(range(23))  # no duplicate, no gap
    assert server.calls == [(0, 5), (5, 5), (10, 5), (15, 5), (20, 5)]
    assert [len(p.items) for p in pages] == [5, 5, 5, 5, 3]
    assert [p.next_offset for p in pages] == [5, 10, 15, 20, None]


async def test_a_page_longer_than_asked_for_under_max_items() -> None:
    server = Server(50, extra=10)
    pages = await pages_of(server, page_size=8, max_items=12)
    assert [i for p in pages for i in p.items] == list(range(12))
    assert server.calls == [(0, 8), (8, 4)]


@pytest.mark.parametrize(("max_items", "calls", "got"), [
    (0, [], 0),
    (1, [(0, 1)], 1),
    (5, [(0, 5)], 5),
    (7, [(0, 5), (5, 2)], 7),
    (10, [(0, 5), (5, 5)], 10),
    (100, [(0, 5), (5, 5), (10, 5), (15, 5), (20, 5)], 22),
])
async def test_max_items_shrinks_the_last_request(max_items: int,
                                                  calls: list[tuple[int, int]],
                                                  got: int) -> None:
    server = Server(22)
    pages = await pages_of(server, page_size=5, max_items=max_items)
    assert server.calls == calls
    assert sum(len(p.items) for p in pages) == got


async def test_max_items_reached_on_a_full_page_announces_the_next_offset() -> None:
    server = Server(22)
    pages = await pages_of(server, page_size=5, offset=3, max_items=5)
    assert server.calls == [(3, 5)]
    assert [(p.offset, p.next_offset, p.items) for p in pages] == [(3, 8, [3, 4, 5, 6, 7])]


async def test_a_failure_names_the_offset_to_resume_from() -> None:
    server = Server(30, fail_at=10)
    with pytest.raises(NotFoundError) as info:
        await pages_of(server, page_size=5, position="start")
    error: ArenaAsyncError = info.value
    assert error.resume_from == 10
    assert any("start=10" in note for note in error.__notes__)
    assert server.calls == [(0, 5), (5, 5), (10, 5)]


@pytest.mark.parametrize(("fail_at", "noted"), [(0, False), (1, True)])
async def test_a_resume_note_only_past_the_first_record(fail_at: int, noted: bool) -> None:
    # At 0 (a refused login, say) there is nothing to resume after: no note, but the
    # offset is still set; at 1 the note says where to resume.
    server = Server(30, fail_at=fail_at)
    with pytest.raises(NotFoundError) as info:
        await pages_of(server, page_size=1, offset=fail_at)
    assert info.value.resume_from == fail_at
    notes = getattr(info.value, "__notes__", [])
    assert notes == ([f"the listing stopped at offset={fail_at}; pass offset={fail_at} to "
                      "resume"] if noted else [])


async def test_records_flattens_pages_and_closes_them() -> None:
    server = Server(12)
    pages = paginate(server.fetch, page_size=5, offset=0, max_items=None)
    got = []
    async for item in records(pages):
        got.append(item)
        if item == 6:
            break
    assert got == list(range(7))
    assert server.calls == [(0, 5), (5, 5)]  # stopped early: no third page


async def test_fake_arena_serving_a_page_longer_than_asked_for() -> None:
    async with FakeArena() as fake:
        guid = fake.add_item()
        fake.add_training_records(guid, 7)
        truth = fake.training_records(guid)
        # A server that ignores the limit: the first page holds all seven records.
        body = {"count": 7, "results": truth}
        fake.faults.add(Fault("status", status=200, body=body, path="/trainingrecords$",
                              times=1))
        async with ArenaClient(email=fake.email, password=fake.password,
                               base_url=fake.url) as arena:
            pages = [p async for p in arena.items.training_records.pages(guid, page_size=3)]
        assert [[r.guid for r in p.items] for p in pages] == [
            [r["guid"] for r in truth[0:3]], [r["guid"] for r in truth[3:6]],
            [r["guid"] for r in truth[6:7]]]
        assert [(p.offset, p.next_offset) for p in pages] == [(0, 3), (3, 6), (6, None)]
        sent = [(r.query["offset"], r.query["limit"]) for r in fake.requests
                if r.route == "GET /items/{item}/trainingrecords"]
        assert sent == [("0", "3"), ("3", "3"), ("6", "3")]
