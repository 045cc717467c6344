"""MEASUREMENT ONLY: a generated fast path for structuring, to size proposed fix 6b.

For each attrs model this compiles one plain Python function with the strict checks
inlined (``type(v) is str``), wire names, aliases, ``unwrap`` and defaults resolved at
build time, and the nested models' functions called directly: no hook dispatch, no
per-field function calls. It only has to be right for input it accepts: anything it does
not accept raises, and ``arena_async._convert.structure`` then structures the value again
with the detailed converter, which decides (result or ResponseFormatError), exactly as
it does when the cattrs fast converter fails. Types it does not know make it refuse to
build, and the cattrs converter is used for them.
"""

from __future__ import annotations

import functools
import itertools
from datetime import datetime
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

import attrs

import arena_async._convert as conv
from arena_async.models._wire import ALIASES, UNWRAP

_PRIMITIVES = {str: "str", int: "int", bool: "bool"}


class Unsupported(Exception):
    pass


def _fail(*_: object) -> Any:
    raise TypeError("not accepted by the fast path")


class _Builder:
    def __init__(self) -> None:
        self.names = itertools.count()
        self.env: dict[str, Any] = {"_fail": _fail, "_float": conv._float,
                                    "_datetime": conv._datetime, "Mapping": dict}

    def name(self, obj: Any, prefix: str) -> str:
        key = f"_{prefix}{next(self.names)}"
        self.env[key] = obj
        return key

    def expr(self, t: Any, v: str, lines: list[str], indent: str) -> str:
        """Emit checks for value ``v`` of type ``t``; return the expression of the result."""
        if t in _PRIMITIVES:
            lines.append(f"{indent}if type({v}) is not {_PRIMITIVES[t]}: _fail()")
            return v
        if t is float:
            return f"_float({v}, None)"
        if t is datetime:
            return f"_datetime({v}, None)"
        if t is Any:
            return v
        origin, args = get_origin(t), get_args(t)
        if origin in (Union, UnionType) and len(args) == 2 and NoneType in args:
            inner = next(a for a in args if a is not NoneType)
            sub: list[str] = []
            res = self.expr(inner, v, sub, indent + "    ")
            out = f"_o{next(self.names)}"
            lines.append(f"{indent}if {v} is None:")
            lines.append(f"{indent}    {out} = None")
            lines.append(f"{indent}else:")
            lines.extend(sub)
            lines.append(f"{indent}    {out} = {res}")
            return out
        if origin is list and len(args) == 1:
            fn = self.name(function(args[0], self), "item")
            lines.append(f"{indent}if type({v}) is not list: _fail()")
            return f"[{fn}(e) for e in {v}]"
        if origin is dict and args and args[0] is str and args[1] is Any:
            lines.append(f"{indent}if type({v}) is not dict: _fail()")
            lines.append(f"{indent}for k in {v}:")
            lines.append(f"{indent}    if type(k) is not str: _fail()")
            return f"dict({v})"
        if attrs.has(t):
            return f"{self.name(model_function(t), 'model')}({v})"
        raise Unsupported(repr(t))


def function(t: Any, builder: _Builder | None = None) -> Any:
    """A one-argument function structuring a value of type ``t`` (strictly)."""
    if attrs.has(t):
        return model_function(t)
    b = builder or _Builder()
    lines = ["def structure(v):"]
    res = b.expr(t, "v", lines, "    ")
    lines.append(f"    return {res}")
    exec("\n".join(lines), b.env)
    return b.env["structure"]


@functools.cache
def model_function(cl: type[Any]) -> Any:
    """The generated structure function of one attrs model."""
    attrs.resolve_types(cl)  # the models use postponed annotations
    b = _Builder()
    cls = b.name(cl, "cls")
    lines = ["def structure(o):", "    if type(o) is not dict: _fail()"]
    args = []
    for i, f in enumerate(attrs.fields(cl)):
        wire = conv.wire_name(f)
        v = f"v{i}"
        keys = [wire, *f.metadata.get(ALIASES, ())]
        lines.append(f"    {v} = _MISSING")
        for n, key in enumerate(keys):
            lines.append(f"    {'if' if n == 0 else 'elif'} {key!r} in o:")
            lines.append(f"        {v} = o[{key!r}]")
        if UNWRAP in f.metadata:
            lines.append(f"    if type({v}) is dict:")
            lines.append(f"        {v} = {v}.get({f.metadata[UNWRAP]!r}, [])")
        default = f.default
        lines.append(f"    if {v} is _MISSING:")
        if default is attrs.NOTHING:
            lines.append("        _fail()")
            sub: list[str] = []
            res = b.expr(f.type, v, sub, "    ")
            lines.extend(sub)
            lines.append(f"    {v} = {res}")
        else:
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                if default.takes_self:  # type: ignore[attr-defined]
                    raise Unsupported("Factory(takes_self=True)")
                lines.append(f"        {v} = {b.name(default.factory, 'factory')}()")  # type: ignore[attr-defined]
            else:
                lines.append(f"        {v} = {b.name(default, 'default')}")
            lines.append("    else:")
            sub = []
            res = b.expr(f.type, v, sub, "        ")
            lines.extend(sub)
            lines.append(f"        {v} = {res}")
        args.append(v)
    lines.append(f"    return {cls}({', '.join(args)})")
    b.env["_MISSING"] = _MISSING
    exec("\n".join(lines), b.env)
    return b.env["structure"]


_MISSING = object()


class FastStructurer:
    """Stands in for ``_convert._FAST``: generated functions where possible, else cattrs."""

    def __init__(self, fallback: Any) -> None:
        self.fallback = fallback
        self._cache: dict[Any, Any] = {}

    def structure(self, value: Any, cl: Any) -> Any:
        fn = self._cache.get(cl)
        if fn is None:
            try:
                fn = function(cl)
            except Unsupported:
                fn = functools.partial(self.fallback.structure, cl=cl)
            self._cache[cl] = fn
        return fn(value)
