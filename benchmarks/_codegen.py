"""MEASUREMENT ONLY: the structuring the library used before its generated fast path.

The generated per-model structure functions prototyped here (fix 6b) are the library's
structurer (``arena_async._codegen.structurer``). What is left is the switch that turns them
off, so that benchmark 4 can show a cattrs converter without detailed validation (fix 6, the
library before 6b) next to them: :func:`cattrs_only` makes ``structurer`` (as ``_convert``
and ``_envelope`` call it) answer with that converter for every type, with the same detailed
fallback, for the duration of a ``with`` block.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import arena_async._codegen as codegen
import arena_async._convert as conv
import arena_async._envelope as envelope

_CATTRS = conv._make(detailed=False)


def _cattrs_structurer(cl: Any) -> Callable[[Any], Any]:
    return functools.partial(_CATTRS.structure, cl=cl)


@contextlib.contextmanager
def cattrs_only() -> Iterator[None]:
    """Structure through cattrs (no generated functions) in the block."""
    callers = (conv, envelope)
    saved = [m.structurer for m in callers], dict(codegen._STRUCTURERS), dict(envelope._LISTS)
    for module in callers:
        module.structurer = _cattrs_structurer  # type: ignore[assignment]
    codegen._STRUCTURERS.clear()
    envelope._LISTS.clear()
    try:
        yield
    finally:
        for module, original in zip(callers, saved[0], strict=True):
            module.structurer = original  # type: ignore[assignment]
        codegen._STRUCTURERS.clear()
        codegen._STRUCTURERS.update(saved[1])
        envelope._LISTS.clear()
        envelope._LISTS.update(saved[2])
