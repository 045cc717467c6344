"""A small AST-based mutation runner for the core modules (``make mutate``; not run in CI).

For each module it copies ``arena_async/`` and ``tests/`` (and the few files the tests
read) to a temporary directory, records which tests execute which line of the module (a
``sys.settrace`` tracer in a pytest plugin: one traced run per module), then makes the
classic mutants one at a time in the copy and runs, for each, only the tests that execute
its line (``pytest -x -q -p no:randomly``). The live tree, edited by others, is never
touched; the temporary copy is removed at the end.

Mutants: comparison flips (``<`` <-> ``<=``, ``>`` <-> ``>=``, ``==`` <-> ``!=``, ``is``
<-> ``is not``, ``in`` <-> ``not in``), integer and float constants +1 and -1, ``True``
<-> ``False``, a simple statement replaced by ``pass``, ``return x`` -> ``return None``,
``and`` <-> ``or``, ``not x`` -> ``x``. Docstrings, f-string parts, annotations, imports,
``__all__`` and ``assert`` statements are left alone.

A mutant is *killed* when a test fails (or the run exceeds its time limit), *survives*
when every covering test passes, and is *uncovered* when no test executes its line
(counted as a survivor). Survivors listed in :data:`EQUIVALENT` (matched by module,
source line text and mutation) are named equivalent mutants: they cannot change any
observable behaviour, and the adjusted score leaves them out.

Usage::

    .venv/bin/python tools/mutate.py arena_async/_retry.py            # one module
    .venv/bin/python tools/mutate.py --all --write docs/mutation.md   # every core module
    .venv/bin/python tools/mutate.py arena_async/_limiter.py --sample 120 --seed 1

Run it under ``nice -n 19`` on a shared machine (``make mutate`` does).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: The core modules and the test files that exercise them. Within these files, each
#: mutant runs only the tests whose run executed its line.
MODULE_TESTS: dict[str, list[str]] = {
    "arena_async/_retry.py": [
        "tests/test_retry.py", "tests/arena/test_client.py", "tests/akana/test_auth.py",
        "tests/test_deadline.py",
    ],
    "arena_async/_protocol.py": [
        "tests/test_protocol.py", "tests/test_retry.py", "tests/test_pagination.py",
        "tests/arena/test_client.py", "tests/akana/test_tickets.py", "tests/test_deadline.py",
        "tests/test_limiter.py", "tests/test_problem_details.py",
    ],
    "arena_async/_pagination.py": [
        "tests/test_pagination.py", "tests/arena/test_client.py", "tests/akana/test_tickets.py",
    ],
    "arena_async/bulk.py": ["tests/test_bulk.py", "tests/test_bulk_edges.py",
                            "tests/test_cancellation.py"],
    "arena_async/arena/_auth.py": [
        "tests/arena/test_auth_rules.py", "tests/arena/test_oauth_rules.py",
        "tests/arena/test_client.py", "tests/test_secrets.py", "tests/test_auth_skeleton.py",
        "tests/test_retry.py", "tests/share/test_share_clients.py",
        "tests/testing/test_fake_arena_items.py", "tests/test_tracing.py",
    ],
    "arena_async/credentials.py": [
        "tests/test_credentials.py", "tests/arena/test_auth_rules.py",
        "tests/akana/test_lapses.py", "tests/cli/test_export_akana.py",
        "tests/cli/test_select_plan.py",
    ],
    "arena_async/_limiter.py": [
        "tests/test_limiter.py", "tests/test_limiter_properties.py", "tests/test_retry.py",
        "tests/arena/test_client.py", "tests/test_fast_paths.py",
        "tests/share/test_share_clients.py",
    ],
    "arena_async/_exchange.py": [
        "tests/test_exchange.py", "tests/test_retry.py", "tests/test_deadline.py",
        "tests/arena/test_auth_rules.py", "tests/chaos/test_relogin.py",
        "tests/test_limiter.py", "tests/arena/test_client.py",
    ],
    "arena_async/errors.py": [
        "tests/test_errors.py", "tests/test_exchange.py", "tests/test_errors_text.py",
        "tests/test_networks.py",
        "tests/test_retry.py", "tests/test_deadline.py", "tests/test_secrets.py",
        "tests/test_protocol.py", "tests/test_problem_details.py",
        "tests/test_answer_size.py", "tests/test_transport.py", "tests/arena/test_auth_rules.py",
        "tests/chaos/test_relogin.py", "tests/arena/test_client.py",
        "tests/arena/test_items_search.py", "tests/share/test_share_security.py",
        "tests/akana/test_tickets.py",
    ],
    "arena_async/_auth.py": [
        "tests/test_session_auth.py", "tests/test_auth_skeleton.py",
        "tests/arena/test_auth_rules.py", "tests/arena/test_oauth_rules.py",
        "tests/akana/test_auth.py", "tests/chaos/test_relogin.py",
        "tests/arena/test_client.py",
    ],
    "arena_async/_estimate.py": [
        "tests/test_estimate.py", "tests/test_limiter.py", "tests/test_limiter_properties.py",
        "tests/test_fast_paths.py", "tests/test_retry.py", "tests/share/test_share_clients.py",
    ],
    "arena_async/_permit.py": [
        "tests/test_limiter.py", "tests/test_fast_paths.py", "tests/test_retry.py",
        "tests/arena/test_client.py",
    ],
    # The share's pure steps (session, lease, quota ledger): their own tests, no store.
    "arena_async/_share/_state.py": ["tests/share/test_state.py"],
    # The share's item-number map (pure steps and SharedNames on a real SQLite or Redis
    # store) and the lookups that claim in it and wait for each other.
    "arena_async/_share/_names.py": [
        "tests/share/test_names.py", "tests/share/test_number_claims.py",
    ],
    "arena_async/arena/_numbers.py": [
        "tests/arena/test_numbers_unit.py", "tests/arena/test_items_search.py",
        "tests/share/test_number_claims.py", "tests/share/test_names.py",
    ],
    # One member's view of the shared quota ledger (its steps are _state's): not run yet.
    "arena_async/_share/_ledger.py": [
        "tests/share/test_round_trips.py", "tests/share/test_share_clients.py",
    ],
}

#: Default sample sizes (None: every mutant); a run of one module stays within minutes.
DEFAULT_SAMPLE: dict[str, int | None] = {"arena_async/bulk.py": 120}

#: Named equivalent mutants: (module, source line stripped, mutation) -> why no test can
#: tell it from the original. Only survivors are matched against this table.
EQUIVALENT: dict[tuple[str, str, str], str] = {
    # -- credentials
    ("arena_async/credentials.py",
     "return names[0] if len(names) == 1 else f\"{', '.join(names[:-1])} and {names[-1]}\"",
     "`0` -> `-1`"):
        "with one name, names[0] and names[-1] are the same name",
    ("arena_async/credentials.py",
     "name: Callable[[str], str] = ...) -> ArenaCredential: ...", "`...` removed"):
        "an @overload stub's body: never run",
    ("arena_async/credentials.py",
     "name: Callable[[str], str] = ...) -> AkanaCredential: ...", "`...` removed"):
        "an @overload stub's body: never run",
    ("arena_async/credentials.py",
     "name: Callable[[str], str] = ...) -> ArenaCredential | AkanaCredential: ...",
     "`...` removed"):
        "an @overload stub's body: never run",
    ("arena_async/credentials.py",
     "and inner[0].cls in outer[0].cls.fallbacks)):", "`0` -> `-1`"):
        "with two kinds, one of each: inner and outer hold one kind each, so [0] is [-1]",
    ("arena_async/_protocol.py",
     'if not _UNRESERVED_PATH.fullmatch(tail) or tail.count("/") != len(segments) - 1:',
     "`1` -> `2`"):
        "the condition only picks the one-look fast path; the general path (each segment "
        "quoted whole) builds the same URL for unreserved segments, so sending every URL "
        "down it changes speed, not results",
    ("arena_async/_protocol.py", "@attrs.frozen(slots=True)", "`True` -> `False`"):
        "slots only save memory: the class is frozen, so no attribute can be added either way",
    ("arena_async/_protocol.py",
     "remaining = remaining if remaining > 0 else 0  # (no max(): a builtin call per answer)",
     "`>` -> `>=`"):
        "at 0 both keep 0",
    ("arena_async/_protocol.py",
     "remaining = remaining if remaining > 0 else 0  # (no max(): a builtin call per answer)",
     "`0` -> `-1`"):
        "an int count: `> -1` is `>= 0`, and at 0 both keep 0",
    ("arena_async/_estimate.py", "and (limit is None or remaining <= limit)):",
     "`<=` -> `<`"):
        "a count equal to the limit leaves the fast path for _observe, which decides the "
        "same (tests/test_estimate.py compares the two paths on random readings)",
    ("arena_async/_estimate.py", "self.known = remaining if remaining > 0 else 0",
     "`>` -> `>=`"):
        "at 0 both keep 0",
    ("arena_async/_estimate.py", "self.known = remaining if remaining > 0 else 0",
     "`0` -> `-1`"):
        "an int count: `> -1` is `>= 0`, and at 0 both keep 0",
    ("arena_async/_estimate.py", "if reset_ts > current and over:", "`>` -> `>=`"):
        "inside `reset_ts != current`: `>=` is `>` there",
    ("arena_async/_estimate.py", "if reset_ts > current:", "`>` -> `>=`"):
        "inside `reset_ts != current`: `>=` is `>` there",
    ("arena_async/_estimate.py",
     "reset_ts = current  # the same window: jitter, or a server clock ahead of ours",
     "`reset_ts = current` removed"):
        "reset_ts is read after this only when `over` holds (the later-reset branch "
        "returned already) or `current` is None; the earlier-reset branch set it already",
    ("arena_async/_estimate.py",
     'log.debug("quota window: its lowest count announced a later reset; kept until %s",',
     "`log.debug('quota window: its lowest count announced a lat...` removed"):
        "a debug log line: no behaviour",
    ("arena_async/_estimate.py", "self.low_reset = None", "`self.low_reset = None` removed"):
        "in _expire: called only from _pass_reset, which clears low_reset first (the same "
        "line elsewhere is killed by tests/test_estimate.py)",
    ("arena_async/errors.py", "@attrs.frozen(slots=True)", "`True` -> `False`"):
        "slots only save memory: the class is frozen, so no attribute can be added either way",
    ("arena_async/_protocol.py",
     "minutes = int(digits[1:3]) * 60 + int(digits[3:5])", "`5` -> `6`"):
        "`digits` has exactly 5 characters (sign and 4 digits): a slice end past it "
        "gives the same 2 characters",
    ("arena_async/_pagination.py", "Fetch = Callable[[int, int], Awaitable[list[T]]]",
     "`Fetch = Callable[[int, int], Awaitable[list[T]]]` removed"):
        "a type alias read only in annotations, which `from __future__ import annotations` "
        "never evaluates",
    ("arena_async/_pagination.py",
     "if len(items) > limit:  # a server that ignores the limit: keep position exact",
     "`>` -> `>=`"):
        "a page of exactly `limit` items cut to `limit` is the same list",
    ("arena_async/bulk.py", "return self._peak[0]", "`0` -> `-1`"):
        "`_peak` is a one-element list (a cell shared with the run): [-1] is [0]",
    ("arena_async/bulk.py", "peak[0] = max(peak[0], len(workers))", "`0` -> `-1`"):
        "`peak` is a one-element list (a cell shared with the run): [-1] is [0]",
    ("arena_async/bulk.py", "if wakeup and not wakeup[0].done():", "`0` -> `-1`"):
        "`wakeup` holds at most one future (the consumer's, appended then cleared): "
        "[-1] is [0]",
    ("arena_async/bulk.py",
     "async_keys = aiter(keys) if sync_keys is None and isinstance(keys, AsyncIterable) \\",
     "`and` -> `or`"):
        "the constructor admits only an Iterable or an AsyncIterable: with `or`, an object "
        "that is both also gets an async iterator, which `draw` never uses (it takes "
        "`sync_keys` first)",
    ("arena_async/_protocol.py",
     "target: yarl.URL | None = attrs.field(default=None, repr=False, eq=False)",
     "`False` -> `True`"):
        "`target` is `url` parsed: in repr it shows the URL `url` already shows (base URLs "
        "never carry credentials), and in comparisons it is equal whenever `url` is",
    ("arena_async/_limiter.py", "Sleep = Callable[[float], Awaitable[None]]",
     "`Sleep = Callable[[float], Awaitable[None]]` removed"):
        "a type alias read only in annotations, which `from __future__ import annotations` "
        "never evaluates",
    ("arena_async/_permit.py", '__slots__ = ("probe", "seq", "settled")',
     "`__slots__ = ('probe', 'seq', 'settled')` removed"):
        "slots only save memory: nothing sets other attributes on a Permit",
    ("arena_async/_permit.py", '__slots__ = ("_limiter", "_permit")',
     "`__slots__ = ('_limiter', '_permit')` removed"):
        "slots only save memory: nothing sets other attributes on a Slot",
    ("arena_async/_permit.py", "self._permit: Permit | None = None",
     "`self._permit: Permit | None = None` removed"):
        "__aenter__ sets it before anything reads it, and __aexit__ runs only after "
        "__aenter__ returned",
    ("arena_async/_limiter.py",
     "Announced = Quota | tuple[int, datetime | None, float | None]",
     "`Announced = Quota | tuple[int, datetime | None, float | N...` removed"):
        "a type alias read only in annotations, which `from __future__ import annotations` "
        "never evaluates",
    ("arena_async/_limiter.py",
     "self._hold_until = 0.0  # no admission before this (a server's Retry-After)",
     "`0.0` -> `-1.0`"):
        "the initial hold is compared with the wall clock: 0 and -1 both lie in the past",
    ("arena_async/_limiter.py",
     "seq = self._estimate.admit(self._clock(), probe=False)",
     "`False` -> `True`"):
        "(the `probe=False` given to the estimate) without a QuotaPolicy the estimate is "
        "never asked to decide, so its probe_out is never read (the Permit's own flag, on "
        "the next line, is tested)",
    ("arena_async/_limiter.py", "await self._sleep(max(0.0, until - now))", "`0.0` -> `-1.0`"):
        "decide() answers SLEEP only with `until` in the future (a passed reset expires "
        "the window first), so the floor is never reached",
    ("arena_async/_limiter.py", "self._answer = None", "`self._answer = None` removed"):
        "(in the finally of the answer wait) a done future left in _answer is ignored by "
        "_wake and replaced by the next waiter (the same reason as the `is` flip above)",
    ("arena_async/_limiter.py", "if self._answer is fut:", "`is` -> `is not`"):
        "only the gate's holder waits for an answer, so _answer is this future or None "
        "here; a stale, done future left behind is ignored by _wake and replaced by the "
        "next waiter",
    ("arena_async/_limiter.py", "Clock = Callable[[], float]",
     "`Clock = Callable[[], float]` removed"):
        "a type alias read only in annotations, which `from __future__ import annotations` "
        "never evaluates",
    ("arena_async/_limiter.py", "@attrs.frozen(slots=True)", "`True` -> `False`"):
        "slots only save memory: LimiterStats is frozen (and compared by value) either way",
    # -- _estimate
    ("arena_async/_estimate.py",
     '__slots__ = ("admissions", "backoff", "expired_reset", "expires_at", "known",',
     "`__slots__ = ('admissions', 'backoff', 'expired_reset', 'e...` removed"):
        "slots only save memory: nothing sets other attributes on a QuotaEstimate",
    ("arena_async/_estimate.py",
     "return max(0, (self.known or 0) - len(self.lost)), resets_at", "`0` -> `-1`"):
        "(the `or 0`) known is None or 0 there: -1 - lost and 0 - lost are both below 0, "
        "and max(0, ...) makes either 0 (the other `0` -> `-1`, in max, is killed)",
    ("arena_async/_estimate.py", "if reset_ts < current:", "`<` -> `<=`"):
        "the branch is entered only when reset_ts != current: the two never compare equal "
        "there",
    ("arena_async/_estimate.py", "if remaining < self.known:", "`<` -> `<=`"):
        "when remaining == known the mutant assigns max(0, remaining), which is known "
        "already (known is never negative)",
    ("arena_async/arena/_auth.py", "self._owns_session = False", "`False` -> `True`"):
        "(in close) the session was just dropped: a later close returns at `self._token is "
        "None` whatever the flag says",
    ("arena_async/_protocol.py", "@functools.lru_cache(maxsize=64)", "`64` -> `63`"):
        "the cache size: every distinct reset header is still parsed the same way",
    ("arena_async/_protocol.py", "@functools.lru_cache(maxsize=64)", "`64` -> `65`"):
        "the cache size: every distinct reset header is still parsed the same way",
    # -- _exchange
    ("arena_async/_exchange.py", '_E = TypeVar("_E", bound=BaseException)',
     "`_E = TypeVar('_E', bound=BaseException)` removed"):
        "a type variable read only in annotations, which `from __future__ import "
        "annotations` never evaluates",
    ("arena_async/_exchange.py", '__slots__ = ("cause", "delay", "error", "hold_until", "kind")',
     "`__slots__ = ('cause', 'delay', 'error', 'hold_until', 'ki...` removed"):
        "slots only save memory: nothing sets other attributes on an Action",
    ("arena_async/_exchange.py",
     '__slots__ = ("_quota_waits", "_reauths", "_replay", "attempt", "deadline_at",',
     "`__slots__ = ('_quota_waits', '_reauths', '_replay', 'atte...` removed"):
        "slots only save memory: nothing sets other attributes on an Exchange",
    ("arena_async/_exchange.py",
     '__slots__ = ("attempts", "failures", "in_flight", "last", "phase")',
     "`__slots__ = ('attempts', 'failures', 'in_flight', 'last',...` removed"):
        "slots only save memory: nothing sets other attributes on a Trail",
    ("arena_async/_exchange.py", "self.in_flight = False", "`False` -> `True`"):
        "(in Trail.__init__) until the first attempt is sent or fails, `last` is None: "
        "out_of_time's between-attempts branch raises nothing of its own either way",
    ("arena_async/_exchange.py", "previous = 0", "`0` -> `-1`"):
        "attempt numbers start at 1: neither 0 nor -1 equals the first one",
    # -- arena/_auth
    ("arena_async/arena/_auth.py", "self._token: str | None = None",
     "`self._token: str | None = None` removed"):
        "`_set_token(session_id)`, three lines down, assigns `_token` first thing; nothing "
        "reads it in between",
    ("arena_async/arena/_auth.py",
     "self._refresh_at: float | None = None  # (clock) renew a bearer token from then on",
     "`self._refresh_at: float | None = None` removed"):
        "`_set_token(session_id)`, three lines down, sets `_refresh_at = None` before "
        "anything reads it",
    ("arena_async/arena/_auth.py", "self.login: ArenaLogin | None = None",
     "`self.login: ArenaLogin | None = None` removed"):
        "nothing in the library reads `login` (the last login's answer, kept for "
        "inspection); the one test that reads it (tests/test_secrets.py) does so after a login "
        "set it",
    ("arena_async/arena/_auth.py", "if not 200 <= response.status < 300:", "`200` -> `199`"):
        "a 1xx answer is interim: aiohttp reads on for the final answer (a server that "
        "sends only a 199 times the login out), so no status below 200 reaches this line",
    ("arena_async/arena/_auth.py", "self._owns_session = False",
     "`self._owns_session = False` removed"):
        "(in close; the same line in __init__ is killed) the session was just dropped: a "
        "later close returns at `self._token is None` whatever the flag says, and the "
        "pool calls close once",
    ("arena_async/arena/_auth.py", "self.login = login", "`self.login = login` removed"):
        "nothing in the library reads `login` (the last login's answer, kept for "
        "inspection); tests/test_secrets.py only checks that its repr hides the session",
    ("arena_async/arena/_auth.py",
     "reserve = limiter.policy.reserve if limiter.policy is not None else 0", "`0` -> `1`"):
        "ArenaClient always gives its limiter a QuotaPolicy (`quota or QuotaPolicy()`): "
        "`limiter.policy` is never None here",
    ("arena_async/arena/_auth.py",
     "reserve = limiter.policy.reserve if limiter.policy is not None else 0", "`0` -> `-1`"):
        "ArenaClient always gives its limiter a QuotaPolicy (`quota or QuotaPolicy()`): "
        "`limiter.policy` is never None here",
    ("arena_async/arena/_auth.py", "return []", "`return x` -> `return None`"):
        "(`_oauth_errors` of a body that is not JSON) APIError keeps `list(errors or [])`: "
        "None and [] make the same error",
    ("arena_async/arena/_auth.py",
     'request = Request("POST", url, "/login", json=body, headers=headers, auth=False)',
     "`False` -> `True`"):
        "`Request.auth` is read only by the pool's `send` and by `classify`; login, token "
        "and logout requests go through `login_once` / `send_once`, which read neither",
    ("arena_async/arena/_auth.py",
     'request = Request("POST", token_url, shown, headers=headers, auth=False,',
     "`False` -> `True`"):
        "`Request.auth` is read only by the pool's `send` and by `classify`; login, token "
        "and logout requests go through `login_once` / `send_once`, which read neither",
    ("arena_async/arena/_auth.py",
     'request = Request("PUT", build_url(self._base_url, "logout"), "/logout", auth=False)',
     "`False` -> `True`"):
        "`Request.auth` is read only by the pool's `send` and by `classify`; login, token "
        "and logout requests go through `login_once` / `send_once`, which read neither",
    # -- _share/_names
    ("arena_async/_share/_names.py", "Answer = tuple[str | None, float]",
     "`Answer = tuple[str | None, float]` removed"):
        "a type alias read only in annotations, which `from __future__ import annotations` "
        "never evaluates",
    ("arena_async/_share/_names.py", "@attrs.frozen(slots=True)", "`True` -> `False`"):
        "slots only save memory: Claimed is frozen, so no attribute can be added either way",
    ("arena_async/_share/_names.py", "return not entries and not claims", "`not x` -> `x`"):
        "(the first `not`, in _unchanged of no document) the entries are read from the "
        "document, so with none they are always empty: the mutant answers {} (false) where "
        "`not claims` was asked, and the step then writes `_document({}, claims)`, which is "
        "None, the document it had, when there are no claims either",
    ("arena_async/_share/_names.py", "results: list[Any]", "`results: list[Any]` removed"):
        "a bare annotation in a function body: nothing runs (the tracer sees no line)",
    ("arena_async/_share/_names.py", "part: Claimed | None",
     "`part: Claimed | None` removed"):
        "a bare annotation in a function body: nothing runs (the tracer sees no line)",
    ("arena_async/_share/_names.py", "[part] = await self._all([(shard_of(first[0]),",
     "`0` -> `-1`"):
        "`first` is the numbers of one shard (grouped by shard_of): its last number has the "
        "shard of its first",
    ("arena_async/_share/_names.py", "for shard, found in zip(shards, read, strict=True):",
     "`True` -> `False`"):
        "`read` is `_all`'s answer to one step per shard: always as long as `shards`",
    ("arena_async/_share/_names.py",
     "for (shard, _), result in zip(steps, results, strict=True):", "`True` -> `False`"):
        "`results` is `_all`'s answer to `steps`, one per step: the lengths are equal",
    # -- arena/_numbers
    ("arena_async/arena/_numbers.py",
     'return GuidBatch(answers, source="arena", requests=sent[0])', "`0` -> `-1`"):
        "`sent` is a one-element list (a cell `fetch` adds its requests to): [-1] is [0]",
    ("arena_async/arena/_numbers.py", "requests=sent[0])", "`0` -> `-1`"):
        "`sent` is a one-element list (a cell `fetch` adds its requests to): [-1] is [0]",
    ("arena_async/arena/_numbers.py", "continue", "`continue` removed"):
        "(in _renew, with nothing held) a claim of no numbers asks the share nothing: "
        "SharedNames.claim returns an empty Claimed at once",
    ("arena_async/arena/_numbers.py", "@attrs.frozen(slots=True)", "`True` -> `False`"):
        "slots only save memory: GuidBatch is frozen, so no attribute can be added either way",
    ("arena_async/arena/_numbers.py", "Sleep = Callable[[float], Awaitable[None]]",
     "`Sleep = Callable[[float], Awaitable[None]]` removed"):
        "a type alias read only in annotations, which `from __future__ import annotations` "
        "never evaluates",
    ("arena_async/arena/_numbers.py", 'Source = Literal["memory", "share", "arena"]',
     "`Source = Literal['memory', 'share', 'arena']` removed"):
        "a type alias read only in annotations, which `from __future__ import annotations` "
        "never evaluates",
    ("arena_async/arena/_numbers.py",
     "Fetch = Callable[[Sequence[str], float | None, list[int]], Awaitable[dict[str, str | None]]]",
     "`Fetch = Callable[[Sequence[str], float | None, list[int]]...` removed"):
        "a type alias read only in annotations, which `from __future__ import annotations` "
        "never evaluates",
    ("arena_async/arena/_numbers.py", "Plan = Callable[[Sequence[str]], list[list[str]]]",
     "`Plan = Callable[[Sequence[str]], list[list[str]]]` removed"):
        "a type alias read only in annotations, which `from __future__ import annotations` "
        "never evaluates",
}

#: What the tests read beside the package and the tests themselves.
COPIED = ("arena_async", "tests", "pyproject.toml", "README.md", "CONTRIBUTING.md", "docs",
          "examples", "mkdocs.yml")


# ---------------------------------------------------------------------------- mutants
@dataclass(frozen=True)
class Mutant:
    """One change to a module: the byte span of a line range it replaces, and with what."""

    line: int
    col: int
    end_line: int
    end_col: int
    replacement: str
    description: str
    source_line: str

    @property
    def label(self) -> str:
        return f"L{self.line}: {self.description}"


_FLIP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
    ast.In: ast.NotIn, ast.NotIn: ast.In,
}
_OP_TEXT: dict[type[ast.cmpop], str] = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
    ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
}
_REMOVABLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Raise, ast.Return,
              ast.Continue, ast.Break, ast.Delete)


def _skipped_nodes(tree: ast.Module) -> set[int]:
    """ids of nodes never mutated: docstrings, f-string parts, annotations, __all__,
    asserts, TYPE_CHECKING blocks, and everything under them."""
    roots: list[ast.AST] = []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) \
                and isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            roots.append(body[0])
        if isinstance(node, ast.JoinedStr | ast.Assert | ast.Import | ast.ImportFrom):
            roots.append(node)
        if isinstance(node, ast.arg) and node.annotation is not None:
            roots.append(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns:
            roots.append(node.returns)
        if isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            roots.append(node)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) \
                and node.test.id == "TYPE_CHECKING":
            roots.append(node)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):  # attribute docstrings
            roots.append(node)
    skipped: set[int] = set()
    for root in roots:
        skipped.update(id(n) for n in ast.walk(root))
    return skipped


def mutants_of(source: str) -> list[Mutant]:
    """Every mutant of ``source``, in source order."""
    tree = ast.parse(source)
    lines = source.splitlines()
    skipped = _skipped_nodes(tree)
    found: list[Mutant] = []

    def add(node: ast.AST, replacement: str, description: str) -> None:
        lineno = node.lineno  # type: ignore[attr-defined]
        found.append(Mutant(
            lineno, node.col_offset, node.end_lineno or lineno,  # type: ignore[attr-defined]
            node.end_col_offset or 0, replacement, description,  # type: ignore[attr-defined]
            lines[lineno - 1].strip()))

    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Compare):
            for index, op in enumerate(node.ops):
                flipped = _FLIP.get(type(op))
                if flipped is None:
                    continue
                ops = list(node.ops)
                ops[index] = flipped()
                mutated = ast.Compare(node.left, ops, node.comparators)
                add(node, f"({ast.unparse(mutated)})",
                    f"`{_OP_TEXT[type(op)]}` -> `{_OP_TEXT[flipped]}`")
        elif isinstance(node, ast.BoolOp):
            other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            names = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
            add(node, f"({ast.unparse(ast.BoolOp(other, node.values))})",
                f"`{names[0]}` -> `{names[1]}`")
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            add(node, f"({ast.unparse(node.operand)})", "`not x` -> `x`")
        elif isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool):
                add(node, repr(not value), f"`{value}` -> `{not value}`")
            elif isinstance(value, int | float):
                for delta in (1, -1):
                    new = value + delta
                    add(node, f"({new!r})", f"`{value!r}` -> `{new!r}`")
        if isinstance(node, _REMOVABLE) and id(node) not in skipped:
            if isinstance(node, ast.Return) and node.value is not None:
                if not isinstance(node.value, ast.Constant):  # (a constant: flipped above)
                    add(node, "return None", "`return x` -> `return None`")
                continue
            add(node, "pass", f"`{_first_line(ast.unparse(node))}` removed")
    found.sort(key=lambda m: (m.line, m.col, m.description))
    return found


def _first_line(text: str) -> str:
    first = text.splitlines()[0] if text else text
    return first if len(first) <= 60 else first[:57] + "..."


def apply(source: str, mutant: Mutant) -> str:
    """``source`` with ``mutant`` applied (ast columns are UTF-8 byte offsets)."""
    lines = source.splitlines(keepends=True)
    start = lines[mutant.line - 1].encode()
    end = lines[mutant.end_line - 1].encode()
    head = start[:mutant.col].decode()
    tail = end[mutant.end_col:].decode()
    replacement = mutant.replacement
    return "".join(lines[:mutant.line - 1]) + head + replacement + tail \
        + "".join(lines[mutant.end_line:])


# ---------------------------------------------------------------------------- coverage
_TRACE_PLUGIN = textwrap.dedent('''
    """Written by tools/mutate.py: which test executes which line of one module."""
    import json, os, sys, threading
    import pytest

    TARGET = os.path.realpath(os.environ["MUTATE_TARGET"])
    OUT = os.environ["MUTATE_COVERAGE"]
    _lines = {}
    _current = [None]

    def _local(frame, event, arg):
        if event == "line":
            _lines.setdefault(frame.f_lineno, set()).add(_current[0] or "<import>")
        return _local

    def _global(frame, event, arg):
        if frame.f_code.co_filename == TARGET:
            _lines.setdefault(frame.f_lineno, set()).add(_current[0] or "<import>")
            return _local
        return None

    # Module-level lines run at import: before the tests, as early as this plugin loads
    # (``-p`` plugins load before the entry-point plugins that import the package).
    sys.settrace(_global)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item, nextitem):
        _current[0] = item.nodeid
        sys.settrace(_global)
        threading.settrace(_global)
        try:
            yield
        finally:
            _current[0] = None

    def pytest_sessionfinish(session, exitstatus):
        sys.settrace(None)
        threading.settrace(None)
        with open(OUT, "w") as f:
            json.dump({str(k): sorted(v) for k, v in _lines.items()}, f)
''')


def _pytest_args(nodeids: list[str]) -> list[str]:
    return ["-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
            "--hypothesis-seed=0", "-o", "addopts=", "--no-header", *nodeids]


def _env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(work), str(work / "tools_mutate")])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def coverage_map(work: Path, module: str, tests: list[str],
                 python: str) -> tuple[dict[int, list[str]], float]:
    """Line -> covering test node ids, from one traced run; and that run's duration."""
    out = work / "coverage.json"
    env = _env(work)
    env["MUTATE_TARGET"] = str(work / module)
    env["MUTATE_COVERAGE"] = str(out)
    args = [python, "-m", "pytest", "-p", "_mutate_trace", *_pytest_args(tests)]
    args.remove("-x")  # every test, so every line's covering tests are known
    started = time.monotonic()
    proc = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True,
                          check=False)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-4000:] + proc.stderr[-2000:])
        raise _Unmutated(f"the tests of {module} fail before any mutation: fix them first")
    data = json.loads(out.read_text())
    return {int(k): v for k, v in data.items()}, elapsed


# ---------------------------------------------------------------------------- running
class _Unmutated(Exception):
    """A module that cannot be measured now (its tests fail unmutated)."""


@dataclass
class Outcome:
    mutant: Mutant
    status: str  # killed | survived | uncovered | timeout | invalid
    seconds: float = 0.0
    equivalent: str | None = None


@dataclass
class ModuleResult:
    module: str
    total_mutants: int
    sampled: int
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""
    date: str = ""

    def count(self, *statuses: str) -> int:
        return sum(o.status in statuses for o in self.outcomes)

    @property
    def killed(self) -> int:
        return self.count("killed", "timeout")

    @property
    def valid(self) -> int:
        return len(self.outcomes) - self.count("invalid")

    @property
    def equivalents(self) -> int:
        return sum(o.equivalent is not None for o in self.outcomes)

    @property
    def score(self) -> float:
        return self.killed / self.valid if self.valid else 1.0

    @property
    def adjusted(self) -> float:
        counted = self.valid - self.equivalents
        return self.killed / counted if counted else 1.0


def run_mutant(work: Path, module: str, original: str, mutant: Mutant, *,
               nodeids: list[str], python: str, timeout: float, fork: bool) -> Outcome:
    path = work / module
    mutated = apply(original, mutant)
    try:
        compile(mutated, str(path), "exec")
    except SyntaxError:
        return Outcome(mutant, "invalid")
    path.write_text(mutated)
    started = time.monotonic()
    try:
        if fork:
            code = _forked_pytest(work, _pytest_args(nodeids), timeout)
        else:
            code = _subprocess_pytest(work, _pytest_args(nodeids), python, timeout)
    finally:
        path.write_text(original)
    if code is None:
        status = "timeout"
    elif code in (0, 1, 2):  # 1: a test failed; 2: interrupted (e.g. a collection error)
        status = "survived" if code == 0 else "killed"
    else:  # 3: internal error, 4: usage error, 5: no tests collected
        status = "invalid"
    return Outcome(mutant, status, time.monotonic() - started)


def _subprocess_pytest(work: Path, args: list[str], python: str,
                       timeout: float) -> int | None:
    proc = subprocess.Popen([python, "-m", "pytest", *args], cwd=work, env=_env(work),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # this mutant's own test run, nothing else
        proc.wait()
        return None


_WARM = ("pytest", "_pytest.python", "_pytest.fixtures", "pytest_asyncio", "pytest_aiohttp",
         "hypothesis", "hypothesis.extra.pytestplugin", "aiohttp", "aiohttp.web",
         "aiohttp.test_utils", "attrs", "cattrs", "cattrs.gen", "yarl", "multidict",
         "aiolimiter", "orjson")


def _warm_up() -> None:
    """Import the heavy third-party modules once, so each forked test run skips them (the
    package under test is never imported here: each child imports the mutant afresh)."""
    import importlib

    for name in _WARM:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
    assert "arena_async" not in sys.modules


def _forked_pytest(work: Path, args: list[str], timeout: float) -> int | None:
    """Run pytest in a forked child of this (warmed-up) process; its exit code, or None
    when it ran past ``timeout`` (then it and its process group are killed)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 3
        try:
            os.setsid()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            os.chdir(work)
            os.environ.update(_env(work))
            sys.path[:0] = [str(work), str(work / "tools_mutate")]
            sys.dont_write_bytecode = True
            import pytest

            code = int(pytest.main(args))
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)  # this mutant's own test run, nothing else
            os.waitpid(pid, 0)
            return None
        time.sleep(0.02)


def _copy_tree(work: Path, rev: str | None) -> None:
    """The package, the tests and what they read: from the work tree, or from commit
    ``rev`` (a snapshot that other people's uncommitted edits cannot reach)."""
    if rev is not None:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "--",
                                  *[n for n in COPIED if (REPO / n).exists()]],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
        return
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, work / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.exists():
            shutil.copy2(source, work / name)


def run_module(module: str, *, sample: int | None, seed: int, python: str,
               fork: bool = False, rev: str | None = None, timeout: float | None = None,
               only: list[tuple[int, str, str]] | None = None,
               progress: bool = True) -> ModuleResult:
    """Mutate one module in a temporary copy of the tree; return the outcomes."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
        work = Path(tmp)
        _copy_tree(work, rev)
        tests = [t for t in MODULE_TESTS[module] if (work / t).exists()]
        (work / "tools_mutate").mkdir()
        (work / "tools_mutate" / "_mutate_trace.py").write_text(_TRACE_PLUGIN)
        _check_isolated(work, python)
        if not (work / module).exists():  # not written yet (or not in ``rev``)
            raise _Unmutated(f"{module} does not exist{f' in {rev}' if rev else ''}")
        original = (work / module).read_text()
        every = mutants_of(original)
        chosen = every
        if only is not None:  # the survivors of an earlier run (by mutation and text)
            wanted = list(only)
            chosen = []
            # The same line first (a line's text repeats: `continue`, `return None`), then
            # the same text on another line (code moved since the run).
            for same_line in (True, False):
                for mutant in every:
                    if any(mutant is c for c in chosen):
                        continue
                    match = next((w for w in wanted if (w[1], w[2]) == (
                        mutant.description, mutant.source_line)
                        and (not same_line or w[0] == mutant.line)), None)
                    if match is not None:
                        wanted.remove(match)
                        chosen.append(mutant)
            chosen.sort(key=lambda m: (m.line, m.col, m.description))
            if wanted:  # the code changed since: the earlier kills may not hold either
                raise _Unmutated(f"{module} changed since its last run (no {wanted[0]}): "
                                 "run it in full")
        elif sample is not None and sample < len(every):
            chosen = sorted(random.Random(seed).sample(every, sample),
                            key=lambda m: (m.line, m.col, m.description))
        covering, base = coverage_map(work, module, tests, python)
        # A mutant's run is its covering tests, untraced: well under the traced run of
        # every test file; past 90 s it is a hang (an endless loop), counted as killed.
        timeout = timeout if timeout is not None else max(30.0, min(90.0, 2.0 * base))
        result = ModuleResult(module, len(every), len(chosen))
        for index, mutant in enumerate(chosen, 1):
            nodeids = sorted(set().union(*(covering.get(line, [])
                                           for line in range(mutant.line,
                                                             mutant.end_line + 1))))
            # A module-level line runs at import only: every test file covers it.
            nodeids = tests if nodeids == ["<import>"] else [n for n in nodeids
                                                             if n != "<import>"]
            if not nodeids:
                outcome = Outcome(mutant, "uncovered")
            else:
                outcome = run_mutant(work, module, original, mutant,
                                     nodeids=_ordered(nodeids, tests), python=python,
                                     timeout=timeout, fork=fork)
            if outcome.status in ("survived", "uncovered"):
                outcome.equivalent = EQUIVALENT.get(
                    (module, mutant.source_line, mutant.description))
            result.outcomes.append(outcome)
            if progress:
                print(f"  [{index}/{len(chosen)}] {outcome.status:9} {mutant.label}"
                      f"  ({outcome.seconds:.1f} s)", flush=True)
    result.seconds = time.monotonic() - started
    return result


def _ordered(nodeids: list[str], tests: list[str]) -> list[str]:
    """Node ids in the order of the module's test files (cheap unit tests first)."""
    rank = {t: i for i, t in enumerate(tests)}
    return sorted(nodeids, key=lambda n: (rank.get(n.split("::")[0], len(rank)), n))


def _check_isolated(work: Path, python: str) -> None:
    """The copy, not the live tree, must be what the tests import."""
    probe = subprocess.run([python, "-c", "import arena_async; print(arena_async.__file__)"],
                           cwd=work, env=_env(work), capture_output=True, text=True,
                           check=True)
    where = Path(probe.stdout.strip()).resolve()
    if not where.is_relative_to(work.resolve()):
        raise SystemExit(f"the tests would import {where}, not the copy: refusing to run")


# ---------------------------------------------------------------------------- report
_BEGIN, _END = "<!-- mutate:results:begin -->", "<!-- mutate:results:end -->"
_RESULT = re.compile(r"<!-- mutate:module (\S+) (\{.*?\}) -->")


def _module_section(result: ModuleResult) -> str:
    summary = {"mutants": result.total_mutants, "sampled": result.sampled,
               "valid": result.valid, "killed": result.killed,
               "survived": result.count("survived"), "uncovered": result.count("uncovered"),
               "equivalent": result.equivalents, "seconds": round(result.seconds),
               "date": result.date or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    out = [f"<!-- mutate:module {result.module} {json.dumps(summary)} -->",
           f"### `{result.module}`", ""]
    if result.note:
        out += [f"({result.note}.)", ""]
    survivors = [o for o in result.outcomes if o.status in ("survived", "uncovered")]
    if not survivors:
        out.append("No survivors.")
    for o in survivors:
        tag = "uncovered" if o.status == "uncovered" else "survived"
        line = f"- L{o.mutant.line} {o.mutant.description} ({tag}): `{o.mutant.source_line}`"
        if o.equivalent:
            line += f"\n  - **equivalent**: {o.equivalent}"
        out.append(line)
    out.append(f"<!-- mutate:module-end {result.module} -->")
    return "\n".join(out)


_SURVIVOR = re.compile(r"^- L(\d+) (.+?) \((survived|uncovered)\): `(.*)`$", re.M)


def previous_run(path: Path, module: str) -> tuple[dict[str, object], list[tuple[int, str,
                                                                                 str]]]:
    """The summary and the survivors of ``module``'s last run recorded in ``path``."""
    text = path.read_text() if path.exists() else ""
    found = re.search(rf"<!-- mutate:module {re.escape(module)} (\{{.*?\}}) -->(.*?)"
                      rf"<!-- mutate:module-end {re.escape(module)} -->", text, re.S)
    if found is None:
        raise _Unmutated(f"no earlier run of {module} in {path}")
    summary = json.loads(found.group(1))
    survivors = [(int(m.group(1)), m.group(2), m.group(4))
                 for m in _SURVIVOR.finditer(found.group(2))]
    return summary, survivors


def relabel(path: Path, module: str) -> ModuleResult:
    """``module``'s recorded result with its survivors matched against :data:`EQUIVALENT`
    again (after naming more equivalent mutants), nothing re-run."""
    summary, _ = previous_run(path, module)
    text = path.read_text()
    section = text[text.index(f"<!-- mutate:module {module} "):
                   text.index(f"<!-- mutate:module-end {module} -->")]
    rerun = ModuleResult(module, 0, 0)
    for m in _SURVIVOR.finditer(section):
        mutant = Mutant(int(m.group(1)), 0, int(m.group(1)), 0, "", m.group(2), m.group(4))
        rerun.outcomes.append(Outcome(mutant, m.group(3), equivalent=EQUIVALENT.get(
            (module, mutant.source_line, mutant.description))))
    merged = merge_rerun(module, summary, rerun)
    merged.seconds = float(summary["seconds"])  # type: ignore[arg-type]
    merged.note = ""
    notes = re.findall(r"^\((survivors of the run .*?)\.\)$", section, re.M)
    if notes:
        merged.note = notes[0]
    merged.date = str(summary["date"])
    return merged


def merge_rerun(module: str, summary: dict[str, object],
                rerun: ModuleResult) -> ModuleResult:
    """A full run's result from an earlier run's summary and a re-run of its survivors:
    the mutants killed then stay killed (tests are only ever added)."""
    placeholder = Mutant(0, 0, 0, 0, "", "(killed in the earlier run)", "")
    merged = ModuleResult(module, int(summary["mutants"]),  # type: ignore[call-overload]
                          int(summary["sampled"]))  # type: ignore[call-overload]
    invalid = int(summary["sampled"]) - int(summary["valid"])  # type: ignore[call-overload]
    merged.outcomes = ([Outcome(placeholder, "killed")]
                       * int(summary["killed"])  # type: ignore[call-overload]
                       + [Outcome(placeholder, "invalid")] * invalid + rerun.outcomes)
    merged.seconds = rerun.seconds
    merged.note = (f"survivors of the run of {summary['date']} re-run "
                   f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    return merged


def _percent(part: int, whole: int) -> str:
    """A score rounded down (99.6 % is not 100 %: a survivor is left)."""
    return f"{100 * part // whole} %"


def _table(sections: dict[str, str]) -> str:
    rows = ["| module | mutants (sampled) | killed | survived | uncovered | named equivalent "
            "| score | score without equivalents | run |",
            "|---|---|---|---|---|---|---|---|---|"]
    for module, text in sections.items():
        match = _RESULT.search(text)
        if not match:
            continue
        s = json.loads(match.group(2))
        valid = s["valid"] or 1
        counted = (s["valid"] - s["equivalent"]) or 1
        sampled = f"{s['mutants']} ({s['sampled']})" if s["sampled"] != s["mutants"] \
            else str(s["mutants"])
        rows.append(f"| `{module}` | {sampled} | {s['killed']} | {s['survived']} | "
                    f"{s['uncovered']} | {s['equivalent']} | {_percent(s['killed'], valid)} "
                    f"| {_percent(s['killed'], counted)} | {s['seconds']} s, {s['date']} |")
    return "\n".join(rows)


def write_report(path: Path, results: list[ModuleResult]) -> None:
    """Update ``path``: each run module's section is replaced; the table is rebuilt."""
    text = path.read_text() if path.exists() else f"# Mutation testing\n\n{_BEGIN}\n{_END}\n"
    if _BEGIN not in text:
        text += f"\n{_BEGIN}\n{_END}\n"
    head, _, rest = text.partition(_BEGIN)
    body, _, tail = rest.partition(_END)
    sections: dict[str, str] = {}
    for match in re.finditer(r"<!-- mutate:module (\S+) .*?<!-- mutate:module-end \1 -->",
                             body, re.S):
        sections[match.group(1)] = match.group(0)
    for result in results:
        sections[result.module] = _module_section(result)
    ordered = {m: sections[m] for m in MODULE_TESTS if m in sections}
    block = "\n\n".join([_table(ordered), "## Survivors by module", *ordered.values()])
    path.write_text(f"{head}{_BEGIN}\n{block}\n{_END}{tail}")


def _print(result: ModuleResult) -> None:
    print(f"\n{result.module}: {result.killed}/{result.valid} killed "
          f"({100 * result.score:.1f} %; {100 * result.adjusted:.1f} % without "
          f"{result.equivalents} named equivalent), {result.count('survived')} survived, "
          f"{result.count('uncovered')} uncovered, {result.count('invalid')} invalid; "
          f"{result.sampled} of {result.total_mutants} mutants, {result.seconds:.0f} s")
    for o in result.outcomes:
        if o.status in ("survived", "uncovered"):
            eq = "  [equivalent]" if o.equivalent else ""
            print(f"  {o.status:9} {o.mutant.label}: {o.mutant.source_line}{eq}")


def _iter_modules(args: argparse.Namespace) -> Iterator[str]:
    modules = list(MODULE_TESTS) if args.all else args.modules
    for module in modules:
        if module not in MODULE_TESTS:
            raise SystemExit(f"{module}: not a core module; one of {', '.join(MODULE_TESTS)}")
        yield module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("modules", nargs="*", help="module paths, e.g. arena_async/_retry.py")
    parser.add_argument("--all", action="store_true", help="every core module, one at a time")
    parser.add_argument("--sample", type=int, default=None,
                        help="mutants per module (random, seeded); default: all, or the "
                             "module's default sample")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--list", action="store_true", help="list the mutants; run nothing")
    parser.add_argument("--write", type=Path, default=None,
                        help="update this Markdown report (e.g. docs/mutation.md)")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per mutant (default: twice the traced run, 30-90)")
    parser.add_argument("--relabel", action="store_true",
                        help="only match the survivors recorded in the --write report "
                             "against EQUIVALENT again (after naming more); run nothing")
    parser.add_argument("--survivors", action="store_true",
                        help="re-run only the survivors recorded in the --write report "
                             "(after adding tests); the rest stay as recorded")
    parser.add_argument("--rev", default=None,
                        help="mutate this commit (e.g. HEAD) instead of the work tree")
    parser.add_argument("--no-fork", action="store_true",
                        help="a fresh interpreter per mutant (slower; the default forks a "
                             "warmed-up process when --python is this interpreter)")
    args = parser.parse_args(argv)
    if not args.all and not args.modules:
        parser.error("name a module or pass --all")
    fork = not args.no_fork and hasattr(os, "fork") \
        and Path(args.python).absolute() == Path(sys.executable).absolute()
    if fork:
        _warm_up()
    results = []
    for module in _iter_modules(args):
        if args.list:
            if not (REPO / module).exists():
                print(f"{module}: skipped: it does not exist", flush=True)
                continue
            for mutant in mutants_of((REPO / module).read_text()):
                print(f"{module} {mutant.label}: {mutant.source_line}")
            continue
        sample = args.sample if args.sample is not None else DEFAULT_SAMPLE.get(module)
        if args.relabel:
            if args.write is None:
                parser.error("--relabel needs --write (the report to relabel)")
            result = relabel(args.write, module)
            _print(result)
            write_report(args.write, [result])
            continue
        what = "survivors" if args.survivors else f"sample {sample or 'all'}"
        print(f"{module}: mutating ({what})", flush=True)
        try:
            if args.survivors:
                if args.write is None:
                    parser.error("--survivors needs --write (the report holding them)")
                summary, survivors = previous_run(args.write, module)
                rerun = run_module(module, sample=None, seed=args.seed, python=args.python,
                                   fork=fork, rev=args.rev, timeout=args.timeout,
                                   only=survivors)
                result = merge_rerun(module, summary, rerun)
            else:
                result = run_module(module, sample=sample, seed=args.seed,
                                    python=args.python, fork=fork, rev=args.rev,
                                    timeout=args.timeout)
        except _Unmutated as exc:
            print(f"{module}: skipped: {exc}", flush=True)
            continue
        _print(result)
        results.append(result)
        if args.write is not None:
            write_report(args.write, [result])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
