"""When retries run out mid-listing, the error says what was tried and where to resume."""

from __future__ import annotations

import traceback
from typing import Any

import pytest

from arena_async import (
    APIError,
    ArenaAsyncError,
    ArenaClient,
    RetryPolicy,
    ServerError,
    TransportError,
)
from arena_async.testing import FakeArena, Fault

from ._chaos import FreeSleep, chaos_plan

SEED = 7
#: Half the sends fail; two attempts per request: a 5,000-record listing breaks many times.
RETRY = RetryPolicy(max_attempts=2, backoff=0.01)


def client_for(fake: FakeArena, **kw: Any) -> ArenaClient:
    return ArenaClient(email=fake.email, password=fake.password, base_url=fake.url,
                       timeout=0.2, sleep=FreeSleep(), **kw)


async def test_a_job_resumes_from_resume_from_and_gets_every_record_once() -> None:
    plan = chaos_plan(SEED, scale=2.5, path="/trainingrecords$")  # 50 % of page requests
    async with FakeArena(seed=SEED, faults=plan) as fake:
        guid = fake.add_item()
        fake.add_training_records(guid, 5_000)
        truth = [r["guid"] for r in fake.training_records(guid)]
        got: list[str] = []
        errors: list[ArenaAsyncError] = []
        async with client_for(fake, retry=RETRY) as arena:
            offset = 0
            while True:
                try:
                    async for rec in arena.items.training_records.iter(guid, page_size=100,
                                                                       offset=offset):
                        got.append(rec.guid)
                    break
                except ArenaAsyncError as exc:
                    errors.append(exc)
                    # Whole pages were yielded before the failure: resume right after them.
                    assert exc.resume_from == len(got)  # noqa: PT017 - the job resumes
                    offset = exc.resume_from
                    assert len(errors) < 200
        session_ids = {r.headers["arena_session_id"] for r in fake.requests if r.has_session}
    assert got == truth  # every record exactly once, in order
    assert len(errors) >= 5
    kinds = {type(e) for e in errors}
    assert ServerError in kinds
    assert TransportError in kinds
    for exc in errors:
        text = "".join(traceback.format_exception(exc))
        assert isinstance(exc, APIError | TransportError)
        # What was tried: method, path and query (no secrets), attempts, last status.
        assert exc.method == "GET"
        assert exc.url == f"/items/{guid}/trainingrecords?offset={exc.resume_from}&limit=100"
        assert exc.attempts == RETRY.max_attempts
        if isinstance(exc, APIError):
            assert f"HTTP {exc.status} from GET {exc.url}" in str(exc)
            assert "after 2 attempts" in str(exc)
        else:
            assert f"(GET {exc.url}, 2 attempts)" in str(exc)
        # Each failed attempt is listed; the iterator's position is in a note.
        assert exc.__notes__[0].startswith("attempts: 1: ")
        assert "; 2: " in exc.__notes__[0]
        if exc.resume_from:  # (no resume hint at offset 0: nothing to resume after)
            assert f"pass offset={exc.resume_from} to resume" in exc.__notes__[-1]
        else:
            assert not any("to resume" in note for note in exc.__notes__)
        assert all(s not in text for s in session_ids)


async def test_pages_carry_resume_from_and_max_items_still_holds(fake_clock: Any) -> None:
    async with FakeArena(seed=1) as fake:
        guid = fake.add_item()
        fake.add_training_records(guid, 50)
        truth = [r["guid"] for r in fake.training_records(guid)]
        fake.faults.add(Fault("status", status=502, path="/trainingrecords$", after=2, times=2))
        async with ArenaClient(email=fake.email, password=fake.password, base_url=fake.url,
                               sleep=fake_clock.sleep, retry=RetryPolicy(max_attempts=2)) as arena:
            seen: list[str] = []

            async def read() -> None:
                async for page in arena.items.training_records.pages(guid, page_size=10,
                                                                     max_items=35):
                    seen.extend(r.guid for r in page.items)

            with pytest.raises(ServerError) as info:
                await read()
            assert info.value.resume_from == 20 == len(seen)
            rest = await arena.items.training_records.list(guid, page_size=10, offset=20,
                                                           max_items=35 - len(seen))
        assert seen + [r.guid for r in rest] == truth[:35]
