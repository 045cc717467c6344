"""A user's suite that mixes async tests on the plugin's fixtures with synchronous tests
that call ``asyncio.run()`` (as the CLI tests do) leaves no event loop unclosed.

pytest-asyncio 1.3 created a loop of its own (``get_event_loop()``) around every async
test and put it back as the current loop afterwards; the next ``asyncio.run()`` unset it
and the garbage collector then reported "unclosed event loop" during whichever test was
running, failing it under ``-W error``. Fixed in pytest-asyncio 1.4.0 (#724), which is
why pyproject.toml's floor is 1.4: this test fails on 1.3 (``make test-lowest`` with the
old floor) and guards the floor deterministically, where the rest of the suite only
failed when a collection happened to run at the wrong time.
"""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ("pytester",)

USER_TESTS = '''
import asyncio
import gc

from arena_async import ArenaClient


async def test_async_on_the_fixture(fake_arena):
    async with ArenaClient(email=fake_arena.email, password=fake_arena.password,
                           workspace_id=fake_arena.workspace_id,
                           base_url=fake_arena.url) as arena:
        assert await arena.items.tickets.list(fake_arena.item_guids[0]) is not None


def test_sync_with_asyncio_run():
    async def nothing():
        return 1

    assert asyncio.run(nothing()) == 1
    gc.collect()  # an unclosed loop left behind is reported here, as an error
'''


def test_async_tests_then_asyncio_run_leave_no_loop_unclosed(pytester: pytest.Pytester) -> None:
    pytester.makeini(textwrap.dedent("""\
        [pytest]
        asyncio_mode = auto
        asyncio_default_fixture_loop_scope = function
        filterwarnings =
            error::ResourceWarning
            error::pytest.PytestUnraisableExceptionWarning
        """))
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    assert "ResourceWarning" not in result.stdout.str()
