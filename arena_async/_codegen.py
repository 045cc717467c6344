"""The generated structure functions: one plain function per type, compiled once.

Each function has the strict checks of the converter of record (``_convert``) inlined:
``type(v) is str``, wire names, aliases, ``unwrap``, ``lone`` and defaults resolved at build
time, nested models and lists inlined (no call per field, item or nested object). Its
contract is accept-or-raise: it returns exactly what :func:`arena_async._convert.structure`
would, or raises (any exception), and then the converter of record decides. A type it
cannot build gets a function that always raises.

Why a generator at all: these functions cost 1.1-1.5x ``json.loads`` of the page; cattrs'
own generated functions 2.8-7x (benchmarks/RESULTS.md, "Structuring").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from types import NoneType, UnionType
from typing import Any, TypeVar, Union, cast, get_args, get_origin

import attrs

from .models._wire import ALIASES, LONE, UNWRAP, float_value, wire_name

__all__ = ["is_optional", "structurer"]

T = TypeVar("T")

_PRIMITIVE_NAMES = {str: "str", int: "int", bool: "bool"}


def is_optional(target: Any) -> bool:
    """True for ``X | None`` (one type besides None)."""
    if get_origin(target) not in (Union, UnionType):
        return False
    args = get_args(target)
    return len(args) == 2 and NoneType in args


class _Unsupported(Exception):
    """A type the generator does not handle: the detailed converter structures it."""


def _reject(*_: object) -> Any:
    raise TypeError("not accepted by the generated structurer")


_MISSING = object()


class _Generator:
    """Emits the body of one structure function; each value gets a fresh variable."""

    def __init__(self) -> None:
        self._count = 0
        self._models: list[Any] = []  # models being inlined: a recursive one is refused
        self.env: dict[str, Any] = {"_reject": _reject, "_float": float_value,
                                    "_MISSING": _MISSING,
                                    "_new": object.__new__, "_UTC": UTC,
                                    "_fromisoformat": datetime.fromisoformat}

    def fresh(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def constant(self, obj: Any, prefix: str) -> str:
        name = self.fresh(f"_{prefix}")
        self.env[name] = obj
        return name

    def expr(self, t: Any, v: str, lines: list[str], indent: str) -> str:
        """Emit the checks of value ``v`` against type ``t``; return the result's expression
        (a variable or a simple expression on ``v``)."""
        if t in _PRIMITIVE_NAMES:
            lines.append(f"{indent}if type({v}) is not {_PRIMITIVE_NAMES[t]}: _reject()")
            return v
        if t is float:
            return f"_float({v}, None)"
        if t is datetime:  # datetime_value inlined; its messages come from the fallback
            out = self.fresh("d")
            lines.append(f"{indent}if type({v}) is not str: _reject()")
            lines.append(f"{indent}{out} = _fromisoformat({v})")
            lines.append(f"{indent}if {out}.tzinfo is None:")
            lines.append(f"{indent}    {out} = {out}.replace(tzinfo=_UTC)")
            lines.append(f"{indent}elif {out}.tzinfo is not _UTC:")
            lines.append(f"{indent}    {out} = {out}.astimezone(_UTC)")
            return out
        if t is Any:
            return v
        if is_optional(t):
            inner = next(a for a in get_args(t) if a is not NoneType)
            if inner in _PRIMITIVE_NAMES:
                lines.append(f"{indent}if {v} is not None and type({v}) is not "
                             f"{_PRIMITIVE_NAMES[inner]}: _reject()")
                return v
            sub: list[str] = []
            result = self.expr(inner, v, sub, indent + "    ")
            out = self.fresh("o")
            lines.append(f"{indent}if {v} is None:")
            lines.append(f"{indent}    {out} = None")
            lines.append(f"{indent}else:")
            lines.extend(sub)
            lines.append(f"{indent}    {out} = {result}")
            return out
        origin, args = get_origin(t), get_args(t)
        if origin is list and len(args) == 1:
            out, item = self.fresh("l"), self.fresh("e")
            lines.append(f"{indent}if type({v}) is not list: _reject()")
            append = self.fresh("append")
            lines.append(f"{indent}{out} = []")
            lines.append(f"{indent}{append} = {out}.append")
            lines.append(f"{indent}for {item} in {v}:")
            result = self.expr(args[0], item, lines, indent + "    ")
            lines.append(f"{indent}    {append}({result})")
            return out
        if origin is dict and args == (str, Any):
            key = self.fresh("k")
            lines.append(f"{indent}if type({v}) is not dict: _reject()")
            lines.append(f"{indent}for {key} in {v}:")
            lines.append(f"{indent}    if type({key}) is not str: _reject()")
            return f"dict({v})"
        if attrs.has(t):
            return self.model(t, v, lines, indent)
        raise _Unsupported(repr(t))

    def model(self, cl: Any, o: str, lines: list[str], indent: str) -> str:
        """Emit the structuring of dict ``o`` into attrs class ``cl``; return its variable."""
        if cl in self._models:
            raise _Unsupported(f"recursive model {cl!r}")
        self._models.append(cl)
        attrs.resolve_types(cl)  # the models use postponed annotations
        lines.append(f"{indent}if type({o}) is not dict: _reject()")
        values: list[str] = []
        for f in attrs.fields(cl):
            if not f.init or f.kw_only:
                raise _Unsupported(f"{cl.__name__}.{f.name}")
            v = self.fresh("v")
            keys = [wire_name(f), *f.metadata.get(ALIASES, ())]
            plain = len(keys) == 1 and UNWRAP not in f.metadata and not f.metadata.get(LONE)
            if plain and f.default is attrs.NOTHING:
                lines.append(f"{indent}{v} = {o}[{keys[0]!r}]")  # missing: KeyError, rejected
                values.append(self.expr(f.type, v, lines, indent))
                continue
            if plain and f.default is None and is_optional(f.type):
                lines.append(f"{indent}{v} = {o}.get({keys[0]!r})")  # missing or null: None
                values.append(self.expr(f.type, v, lines, indent))
                continue
            required = f.default is attrs.NOTHING
            if not required:
                lines.append(f"{indent}{v} = _MISSING")
            for n, key in enumerate(keys):  # the wire name first, then each alias in order
                lines.append(f"{indent}{'if' if n == 0 else 'elif'} {key!r} in {o}:")
                lines.append(f"{indent}    {v} = {o}[{key!r}]")
            if required:  # none of its keys: rejected
                lines.append(f"{indent}else:")
                lines.append(f"{indent}    _reject()")
            if UNWRAP in f.metadata:
                lines.append(f"{indent}if type({v}) is dict:")
                lines.append(f"{indent}    {v} = {v}.get({f.metadata[UNWRAP]!r}, [])")
            if f.metadata.get(LONE):
                lines.append(f"{indent}if {v} is not _MISSING and {v} is not None "
                             f"and type({v}) is not list:")
                lines.append(f"{indent}    {v} = [{v}]")
            default = f.default
            if required:
                sub_indent = indent
            else:
                lines.append(f"{indent}if {v} is _MISSING:")
                if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                    if default.takes_self:
                        raise _Unsupported("Factory(takes_self=True)")
                    factory = self.constant(default.factory, "factory")
                    lines.append(f"{indent}    {v} = {factory}()")
                else:
                    lines.append(f"{indent}    {v} = {self.constant(default, 'default')}")
                lines.append(f"{indent}else:")
                sub_indent = indent + "    "
            emitted = len(lines)
            result = self.expr(f.type, v, lines, sub_indent)
            if result != v:
                lines.append(f"{sub_indent}{v} = {result}")
            elif len(lines) == emitted and not required:  # e.g. ``Any``: nothing to check
                lines.append(f"{sub_indent}pass")
            values.append(v)
        out = self.fresh("m")
        cls = self.constant(cl, "cls")
        setters = _slot_setters(cl)
        if setters is None:
            lines.append(f"{indent}{out} = {cls}({', '.join(values)})")
        else:  # what the attrs __init__ would do, without its call and object.__setattr__
            lines.append(f"{indent}{out} = _new({cls})")
            for setter, value in zip(setters, values, strict=True):
                lines.append(f"{indent}{self.constant(setter, 'set')}({out}, {value})")
        self._models.pop()
        return out


def _slot_setters(cl: type[Any]) -> list[Callable[[Any, Any], None]] | None:
    """The slot setters of ``cl``'s fields, in order, when its generated ``__init__`` does
    nothing but store each argument (no validators, converters, pre- or post-init hooks,
    cached hash or init-only fields): then setting the slots on ``object.__new__(cl)``
    builds the same instance. None for any other class (its ``__init__`` is called)."""
    init = cl.__dict__.get("__init__")
    if not getattr(getattr(init, "__code__", None), "co_filename", "").startswith(
            "<attrs generated") or "__slots__" not in cl.__dict__ \
            or len(attrs.fields(cl)) + 1 != len(cl.__slots__) \
            or hasattr(cl, "__attrs_pre_init__") or hasattr(cl, "__attrs_post_init__") \
            or type(cl).__call__ is not type.__call__ \
            or cl.__new__ is not object.__new__:  # type: ignore[comparison-overlap]
        return None  # (slots: the fields and __weakref__ only, so no cached hash)
    setters = []
    for f in attrs.fields(cl):
        descriptor: Any = cl.__dict__.get(f.name)
        if f.validator is not None or f.converter is not None or f.on_setattr is not None \
                or not f.init or type(descriptor).__name__ != "member_descriptor":
            return None
        setters.append(descriptor.__set__)
    return setters


@cache
def _generated(t: Any) -> Callable[[Any], Any]:
    """The generated one-argument structure function of type ``t``."""
    gen = _Generator()
    lines = ["def structure(v):"]
    result = gen.expr(t, "v", lines, "    ")
    lines.append(f"    return {result}")
    exec("\n".join(lines), gen.env)  # the source is built above from type names only
    return cast(Callable[[Any], Any], gen.env["structure"])


_STRUCTURERS: dict[Any, Callable[[Any], Any]] = {}  # built once per type, never evicted


def structurer(cl: type[T] | Any) -> Callable[[Any], T]:
    """The generated structure function of ``cl``; accept-or-raise: it returns what
    ``_convert.structure`` would, or raises (any exception) where ``structure`` might answer
    otherwise (then call ``structure``, which decides and names what is wrong). For a type
    the generator does not handle, a function that always raises.

    Example::

        fast = structurer(list[TrainingRecord])
        try:
            records = fast(data)
        except Exception:
            records = structure(data, list[TrainingRecord], path="$.results")
    """
    fn = _STRUCTURERS.get(cl)
    if fn is None:
        try:
            fn = _generated(cast(Any, cl))
        except _Unsupported:
            fn = _reject
        _STRUCTURERS[cl] = fn
    return fn
