"""MEASUREMENT ONLY: the structuring the library used before its generated fast path.

The generated per-model structure functions prototyped here (fix 6b) are the library's
structurer (``arena_async._convert.structurer``). What is left is the switch that turns them
off, so that benchmark 4 can show a cattrs converter without detailed validation (fix 6, the
library before 6b) next to them: :func:`cattrs_only` makes ``_convert.structurer`` answer
with that converter for every type, with the same detailed fallback, for the duration of a
``with`` block.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import arena_async._convert as conv

_CATTRS = conv._make(detailed=False)


def _cattrs_structurer(cl: Any) -> Callable[[Any], Any]:
    return functools.partial(_CATTRS.structure, cl=cl)


@contextlib.contextmanager
def cattrs_only() -> Iterator[None]:
    """Structure through cattrs (no generated functions) in the block."""
    saved = conv.structurer, dict(conv._STRUCTURERS), dict(conv._LISTS)
    conv.structurer = _cattrs_structurer  # type: ignore[assignment]
    conv._STRUCTURERS.clear()
    conv._LISTS.clear()
    try:
        yield
    finally:
        conv.structurer = saved[0]  # type: ignore[assignment]
        conv._STRUCTURERS.clear()
        conv._STRUCTURERS.update(saved[1])
        conv._LISTS.clear()
        conv._LISTS.update(saved[2])
