"""pytest plugin of arena_async: fixtures that start fake servers on loopback.

Registered through the ``pytest11`` entry point; without installation use
``pytest -p arena_async.testing.plugin``. The fixtures are ``fake_arena`` (a started
``FakeArena.seeded(items=50, seed=1)``), ``fake_arena_factory`` (fakes with your settings)
and ``fake_akana`` (a started ``FakeAkana.seeded(tickets=120, seed=1)``), each closed after
its test. Each first points ``ARENA_SHARE`` at a private temporary folder of the test's
own (``arena_async_share_folder``), so the clients of a test share among themselves there
and never touch your real default share.

With pytest-asyncio installed (``pip install 'arena_async[testing]'``) they are
``pytest_asyncio`` fixtures of function scope: the fake serves from the test's own event
loop, in ``auto`` and ``strict`` mode alike, and ``await fake_arena_factory(...)`` starts
one more. Without pytest-asyncio, installing arena_async leaves pytest working: the
fixtures are then plain fixtures whose fake serves from an event loop on a background
thread, for synchronous tests that call ``asyncio.run(...)`` themselves (or any other
async test runner), and ``fake_arena_factory(...)`` returns the started fake directly.
Read the fake's data freely from the test; mutate it (faults, quota) before the requests
that should see the change.

Example (with pytest-asyncio)::

    async def test_tickets(fake_arena):
        guid = fake_arena.item_guids[0]
        async with ArenaClient(email=fake_arena.email, password=fake_arena.password,
                               base_url=fake_arena.url) as arena:
            assert len(await arena.items.tickets.list(guid)) == len(fake_arena.ticket_refs(guid))

Example (without it)::

    def test_tickets(fake_arena):
        async def fetch():
            async with ArenaClient(email=fake_arena.email, password=fake_arena.password,
                                   base_url=fake_arena.url) as arena:
                return await arena.items.tickets.list(fake_arena.item_guids[0])
        assert len(asyncio.run(fetch())) == len(fake_arena.ticket_refs(fake_arena.item_guids[0]))
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from ._fake_arena import FakeArena
from ._server import FakeServer

if TYPE_CHECKING:
    from ._fake_akana import FakeAkana

__all__ = ["FIXTURE_ITEMS", "FIXTURE_TICKETS", "HAS_PYTEST_ASYNCIO",
           "arena_async_share_folder"]

#: Items in the ``fake_arena`` fixture's workspace.
FIXTURE_ITEMS = 50
#: Tickets in the ``fake_akana`` fixture.
FIXTURE_TICKETS = 120
#: Whether pytest-asyncio is importable, which decides the kind of fixtures (see above).
HAS_PYTEST_ASYNCIO = importlib.util.find_spec("pytest_asyncio") is not None

T = TypeVar("T")
_Fake = TypeVar("_Fake", bound=FakeServer)

#: Seconds a background-thread fake gets to start or close.
_THREAD_TIMEOUT = 30.0


class _LoopThread:
    """An event loop running on a daemon thread, for fakes served to synchronous tests.

    :meth:`serve` starts a fake on it; :meth:`close` closes every fake it served (the
    last first), then stops the loop and joins the thread.

    Example::

        thread = _LoopThread()
        try:
            fake = thread.serve(FakeArena())
        finally:
            thread.close()
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._served: list[FakeServer] = []
        self._thread = threading.Thread(target=self.loop.run_forever,
                                        name="arena_async fake server", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the thread's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(_THREAD_TIMEOUT)

    def serve(self, fake: _Fake) -> _Fake:
        """Start ``fake`` on the thread's loop; returns it."""
        self.run(fake.start())
        self._served.append(fake)
        return fake

    def close(self) -> None:
        """Close the fakes served, stop the loop, join the thread and close the loop."""
        try:
            while self._served:
                self.run(self._served.pop().close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(_THREAD_TIMEOUT)
            if not self._thread.is_alive():
                self.loop.close()


@pytest.fixture
def arena_async_share_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private temporary folder, the test's own, that holds the default share of every
    client the test makes: ``ARENA_SHARE`` points into it during the test (restored
    after), so tests never touch the user's real default share, nor meet another test's
    fakes there. The fake fixtures request it; request it yourself for clients made
    without them.

    Example::

        def test_default_share(arena_async_share_folder):
            assert os.environ["ARENA_SHARE"].endswith("/share.db")
    """
    folder = tmp_path_factory.mktemp("arena_async_share")
    folder.chmod(0o700)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARENA_SHARE", f"sqlite:///{folder / 'share.db'}")
        yield folder


def _arena(items: int = FIXTURE_ITEMS, seed: int = 1, **kwargs: Any) -> FakeArena:
    """The fake ``fake_arena`` serves (its defaults) or ``fake_arena_factory`` makes."""
    return FakeArena.seeded(items=items, seed=seed, **kwargs)


def _akana() -> FakeAkana:
    """The fake ``fake_akana`` serves."""
    from ._fake_akana import FakeAkana

    return FakeAkana.seeded(tickets=FIXTURE_TICKETS, seed=1)


#: pytest-asyncio's option for the loop scope of async fixtures.
_LOOP_SCOPE = "asyncio_default_fixture_loop_scope"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Default pytest-asyncio's ``asyncio_default_fixture_loop_scope`` to ``function`` (the
    scope of these fixtures) when the project leaves it unset, so that users of the plugin
    see no deprecation warning about it. A value the project sets is kept."""
    if not HAS_PYTEST_ASYNCIO:
        return
    try:
        value = config.getini(_LOOP_SCOPE)
    except ValueError:  # an older pytest-asyncio without the option
        return
    cache = getattr(config, "_inicache", None)
    if not value and isinstance(cache, dict):
        cache[_LOOP_SCOPE] = "function"


def _needs_async_test(request: pytest.FixtureRequest, name: str) -> None:
    """With pytest-asyncio, the fakes serve from the test's own event loop, which a plain
    ``def`` test never runs: its requests would hang until they time out. Say so at once."""
    function = getattr(request, "function", None)
    if function is not None and not inspect.iscoroutinefunction(function):
        raise pytest.UsageError(
            f"{request.node.name}: the {name} fixture serves from the test's event loop "
            f"(pytest-asyncio is installed), so the test must be `async def` (await the "
            f"client there instead of calling asyncio.run)")


if HAS_PYTEST_ASYNCIO:
    import pytest_asyncio

    @pytest_asyncio.fixture(name="fake_arena", loop_scope="function")
    async def _fake_arena_async(arena_async_share_folder: Path,
                                request: pytest.FixtureRequest) -> AsyncIterator[FakeArena]:
        """A started ``FakeArena.seeded(items=50, seed=1)``, closed after the test."""
        _needs_async_test(request, "fake_arena")
        async with _arena() as fake:
            yield fake

    @pytest_asyncio.fixture(name="fake_arena_factory", loop_scope="function")
    async def _fake_arena_factory_async(
            arena_async_share_folder: Path,
            request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Awaitable[FakeArena]]]:
        """Start fakes with custom settings; every one is closed after the test.

        Example::

            async def test_quota(fake_arena_factory):
                fake = await fake_arena_factory(items=5, quota_limit=3, quota_window=0.3)
        """
        _needs_async_test(request, "fake_arena_factory")
        async with contextlib.AsyncExitStack() as started:

            async def make(items: int = FIXTURE_ITEMS, seed: int = 1,
                           **kwargs: Any) -> FakeArena:
                return await started.enter_async_context(_arena(items, seed, **kwargs))

            yield make

    @pytest_asyncio.fixture(name="fake_akana", loop_scope="function")
    async def _fake_akana_async(arena_async_share_folder: Path,
                                request: pytest.FixtureRequest) -> AsyncIterator[FakeAkana]:
        """A started ``FakeAkana.seeded(tickets=120, seed=1)``, closed after the test."""
        _needs_async_test(request, "fake_akana")
        async with _akana() as fake:
            yield fake

else:

    @contextlib.contextmanager
    def _loop_thread() -> Iterator[_LoopThread]:
        thread = _LoopThread()
        try:
            yield thread
        finally:
            thread.close()

    @pytest.fixture(name="fake_arena")
    def _fake_arena_threaded(arena_async_share_folder: Path) -> Iterator[FakeArena]:
        """A ``FakeArena.seeded(items=50, seed=1)`` serving from a background thread."""
        with _loop_thread() as thread:
            yield thread.serve(_arena())

    @pytest.fixture(name="fake_arena_factory")
    def _fake_arena_factory_threaded(
            arena_async_share_folder: Path) -> Iterator[Callable[..., FakeArena]]:
        """Start fakes with custom settings (each serving from a background thread);
        every one is closed after the test.

        Example::

            def test_quota(fake_arena_factory):
                fake = fake_arena_factory(items=5, quota_limit=3, quota_window=0.3)
        """
        with _loop_thread() as thread:

            def make(items: int = FIXTURE_ITEMS, seed: int = 1, **kwargs: Any) -> FakeArena:
                return thread.serve(_arena(items, seed, **kwargs))

            yield make

    @pytest.fixture(name="fake_akana")
    def _fake_akana_threaded(arena_async_share_folder: Path) -> Iterator[FakeAkana]:
        """A ``FakeAkana.seeded(tickets=120, seed=1)`` serving from a background thread."""
        with _loop_thread() as thread:
            yield thread.serve(_akana())
