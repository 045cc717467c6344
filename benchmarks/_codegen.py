"""MEASUREMENT ONLY: the structuring the library used before its generated fast path.

The generated per-model structure functions prototyped here (fix 6b) are now the library's
fast path (``arena_async._convert._generated``). What is left is the switch that turns them
off, so that benchmark 4 can show the cattrs fast converter (fix 6, the library before 6b)
next to them: :func:`cattrs_only` makes ``_convert.structure`` use ``_convert._FAST`` for
every type, with the same detailed fallback, for the duration of a ``with`` block.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import arena_async._convert as conv


def _cattrs_path(cl: Any) -> Callable[[Any], Any]:
    return functools.partial(conv._FAST.structure, cl=cl)


@contextlib.contextmanager
def cattrs_only() -> Iterator[None]:
    """Structure through the cattrs fast converter (no generated functions) in the block."""
    saved = conv._fast_path, conv._FAST_PATHS
    conv._fast_path, conv._FAST_PATHS = _cattrs_path, {}
    try:
        yield
    finally:
        conv._fast_path, conv._FAST_PATHS = saved
