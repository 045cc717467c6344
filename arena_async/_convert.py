"""Decoding and structuring of the servers' answers: one structurer, one envelope reader.

- :func:`structurer` (the generated functions): for each type, one plain function compiled
  with the strict checks inlined. Its contract is accept-or-raise: it returns exactly what
  the converter of record would, or raises (any exception); it never returns anything else.
- ``_DETAILED`` (cattrs' detailed converter, the converter of record: wire names from field
  metadata, strict primitives, UTC datetimes) is the one fallback: whatever the generated
  function refuses, it decides: the same result, or :class:`ResponseFormatError` naming the
  wire path, such as ``$.results[3].trainingplan.guid``.
- :func:`read_listing`: the one reader of listing envelopes (Arena ``{"count", "results"}``,
  Akana ``{"Ticket": [...]}``), the one place orjson decodes (see :func:`read_listing`).

Why two structurers at all: the generated functions cost 1.1-1.5x ``json.loads`` of the
page; cattrs' own generated functions 2.8-7x (benchmarks/RESULTS.md, "Structuring").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cache
from types import NoneType, UnionType
from typing import Any, TypeVar, Union, cast, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import is_sequence, list_structure_factory
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, override
from orjson import loads as _orjson_loads

from .errors import ResponseFormatError, excerpt
from .models._wire import ALIASES, LONE, UNWRAP, WIRE

__all__ = ["AKANA_LISTING", "ARENA_LISTING", "Envelope", "loads", "read_listing", "structure",
           "structure_json", "structurer", "wire_name"]

T = TypeVar("T")


def _strict(expected: type, label: str) -> Callable[[Any, Any], Any]:
    def hook(value: Any, _: Any) -> Any:
        # cattrs would coerce "5" -> 5 and 1.9 -> 1; a wrong type is a format error here.
        if type(value) is expected:
            return value
        raise TypeError(f"expected {label}, got {_describe(value)}")

    return hook


def _float(value: Any, _: Any) -> float:
    if type(value) is float or type(value) is int:
        return float(value)
    raise TypeError(f"expected a number, got {_describe(value)}")


def _datetime(value: Any, _: Any) -> datetime:
    if type(value) is not str:
        raise TypeError(f"expected a date-time string, got {_describe(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected an ISO 8601 date-time, got {value[:40]!r}") from None
    if parsed.tzinfo is None:  # the servers document UTC
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:39] + "…"
    return f"{type(value).__name__} {text}"


def wire_name(field: attrs.Attribute[Any]) -> str:
    """The wire key of an attrs field (its metadata, else its Python name)."""
    return cast(str, field.metadata.get(WIRE, field.name))


def _attrs_factory(detailed: bool) -> Callable[[type[Any], cattrs.Converter], Any]:
    def factory(cl: type[Any], converter: cattrs.Converter) -> Any:
        fields = attrs.fields(cl)
        overrides = {f.name: override(rename=wire_name(f)) for f in fields if WIRE in f.metadata}
        inner = make_dict_structure_fn(
            cl,
            converter,
            _cattrs_forbid_extra_keys=False,
            _cattrs_detailed_validation=detailed,
            **overrides,  # type: ignore[arg-type]
        )
        aliases = [
            (wire_name(f), f.metadata[ALIASES]) for f in fields if ALIASES in f.metadata
        ]
        unwraps = [(wire_name(f), f.metadata[UNWRAP]) for f in fields if UNWRAP in f.metadata]
        lones = [wire_name(f) for f in fields if f.metadata.get(LONE)]
        if not aliases and not unwraps and not lones:
            return _require_mapping(inner)

        def structure(value: Any, target: Any) -> Any:
            if type(value) is not dict and not isinstance(value, Mapping):
                raise TypeError(f"expected an object, got {_describe(value)}")
            copied: dict[str, Any] | None = None
            for key, alternatives in aliases:
                if key not in value:
                    for alt in alternatives:
                        if alt in value:
                            copied = dict(value) if copied is None else copied
                            copied[key] = copied.pop(alt)
                            break
            for key, inner_key in unwraps:
                wrapped = (copied or value).get(key)
                if isinstance(wrapped, Mapping):
                    copied = dict(value) if copied is None else copied
                    copied[key] = wrapped.get(inner_key, [])
            for key in lones:
                item = (copied or value).get(key)
                if item is not None and type(item) is not list:
                    copied = dict(value) if copied is None else copied
                    copied[key] = [item]
            return inner(copied if copied is not None else value, target)

        return structure

    return factory


def _require_mapping(inner: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def structure(value: Any, target: Any) -> Any:
        if type(value) is not dict and not isinstance(value, Mapping):
            raise TypeError(f"expected an object, got {_describe(value)}")
        return inner(value, target)

    return structure


def _list_factory(target: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    inner = list_structure_factory(target, converter)

    def structure(value: Any, cl: Any) -> Any:
        # cattrs would split "bug" into ['b', 'u', 'g'] or iterate a dict's keys.
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {_describe(value)}")
        return inner(value, cl)

    return structure


def _is_optional(target: Any) -> bool:
    if get_origin(target) not in (Union, UnionType):
        return False
    args = get_args(target)
    return len(args) == 2 and NoneType in args


def _make(detailed: bool = True) -> cattrs.Converter:
    """A cattrs converter with this module's hooks (the library makes one: detailed)."""
    conv = cattrs.Converter(detailed_validation=detailed, forbid_extra_keys=False)
    # Primitive and datetime hooks first: the class hooks built later look them up.
    conv.register_structure_hook(str, _strict(str, "a string"))
    conv.register_structure_hook(int, _strict(int, "an integer"))
    conv.register_structure_hook(bool, _strict(bool, "a boolean"))
    conv.register_structure_hook(float, _float)
    conv.register_structure_hook(datetime, _datetime)
    conv.register_structure_hook_factory(is_sequence, _list_factory)
    conv.register_structure_hook_factory(attrs.has, _attrs_factory(detailed))
    return conv


_DETAILED = _make(detailed=True)


# -- the generated structurers -------------------------------------------------------------
# One plain function per type: strict checks inlined (``type(v) is str``), wire names,
# aliases, ``unwrap``, ``lone`` and defaults resolved at build time, nested models and lists
# inlined (no call per field, item or nested object). It only has to be right for what it
# accepts: anything else raises, and ``_DETAILED`` decides. A type it cannot build gets a
# function that always raises (so ``_DETAILED`` structures it).

_PRIMITIVE_NAMES = {str: "str", int: "int", bool: "bool"}


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
        self.env: dict[str, Any] = {"_reject": _reject, "_float": _float,
                                    "_datetime": _datetime, "_MISSING": _MISSING,
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
        if t is datetime:  # _datetime inlined; its messages come from the fallback
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
        if _is_optional(t):
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
            if plain and f.default is None and _is_optional(f.type):
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
    """The generated one-argument structure function of type ``t`` (see above)."""
    gen = _Generator()
    lines = ["def structure(v):"]
    result = gen.expr(t, "v", lines, "    ")
    lines.append(f"    return {result}")
    exec("\n".join(lines), gen.env)  # the source is built above from type names only
    return cast(Callable[[Any], Any], gen.env["structure"])


_STRUCTURERS: dict[Any, Callable[[Any], Any]] = {}  # built once per type, never evicted


def structurer(cl: type[T] | Any) -> Callable[[Any], T]:
    """The generated structure function of ``cl``; accept-or-raise: it returns what
    :func:`structure` would, or raises (any exception) where :func:`structure` might answer
    otherwise (then call :func:`structure`, which decides and names what is wrong). For a
    type the generator does not handle, a function that always raises.

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


@cache
def _wire_names(cl: type[Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for f in attrs.fields(cl):
        name = wire_name(f)
        if UNWRAP in f.metadata:
            name = f"{name}.{f.metadata[UNWRAP]}"
        names[f.name] = name
    return names


def _leaf(exc: BaseException, cl: Any) -> tuple[str, BaseException]:
    """Follow the first failure down the cattrs error tree, building the wire path."""
    if isinstance(exc, ClassValidationError) and exc.exceptions:
        sub = exc.exceptions[0]
        for note in getattr(sub, "__notes__", []):
            if isinstance(note, AttributeValidationNote):
                target = exc.cl if attrs.has(exc.cl) else cl
                name = (_wire_names(target).get(note.name, note.name) if attrs.has(target)
                        else note.name)
                if isinstance(sub, KeyError):
                    return f".{name}", KeyError("required key is missing")
                rest, leaf = _leaf(sub, note.type)
                return f".{name}{rest}", leaf
        return _leaf(sub, cl)
    if isinstance(exc, IterableValidationError) and exc.exceptions:
        sub = exc.exceptions[0]
        for note in getattr(sub, "__notes__", []):
            if isinstance(note, IterableValidationNote):
                rest, leaf = _leaf(sub, note.type)
                return f"[{note.index}]{rest}", leaf
        return _leaf(sub, cl)
    if isinstance(exc, ForbiddenExtraKeysError):
        return "", exc
    return "", exc


def structure(value: Any, cl: type[T] | Any, *, path: str = "$", url: str = "",
              body: bytes | None = None) -> T:
    """Structure decoded JSON into ``cl``; a wrong shape raises :class:`ResponseFormatError`
    naming the wire path (``path`` is the prefix, e.g. ``$.results``)."""
    try:
        accepted: T = structurer(cl)(value)
        return accepted
    except Exception:  # refused: the detailed converter decides
        pass
    try:
        result = _DETAILED.structure(value, cl)
    except Exception as exc:
        rest, leaf = _leaf(exc, cl)
        reason = str(leaf) or type(leaf).__name__
        if isinstance(leaf, KeyError):
            reason = "required key is missing"
        raise ResponseFormatError(
            f"unexpected response shape: {reason}",
            path=f"{path}{rest}",
            excerpt=excerpt(body) if body is not None else "",
            url=url,
        ) from None
    return cast(T, result)  # the generated function refused what cattrs accepts


def loads(body: bytes, *, url: str = "") -> Any:
    """Decode a JSON body; anything undecodable raises :class:`ResponseFormatError`."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ResponseFormatError(
            f"response is not valid JSON ({type(exc).__name__})",
            path="$",
            excerpt=excerpt(body),
            url=url,
        ) from None


def structure_json(body: bytes, cl: type[T] | Any, *, url: str = "") -> T:
    """Decode and structure a JSON body in one step."""
    result: T = structure(loads(body, url=url), cl, url=url, body=body)
    return result


@attrs.frozen
class Envelope:
    """Where a listing's records are in its JSON object, and what stands for "none".

    ``key``: the records' list (``"results"``, ``"Ticket"``). ``empty_without_key``: a
    missing or null ``key`` is an empty page (Akana sends ``{}``); otherwise only with
    ``"count": 0`` (Arena). ``lone``: one record sent as an object, not a list of one (some
    XML-to-JSON mappers do this), is read as that list.
    Example: ``Envelope("results", empty_without_key=False, lone=False)``.
    """

    key: str
    empty_without_key: bool
    lone: bool


#: Arena's listings: ``{"count": n, "results": [...]}``.
ARENA_LISTING = Envelope("results", empty_without_key=False, lone=False)
#: Akana's ticket listings: ``{"Ticket": [...]}``, ``{"Ticket": {...}}`` or ``{}``.
AKANA_LISTING = Envelope("Ticket", empty_without_key=True, lone=True)


def _list_structurer(cl: Any) -> Callable[[Any], Any]:
    fn = _LISTS.get(cl)
    if fn is None:
        fn = _LISTS[cl] = structurer(list[cl])
    return fn


_LISTS: dict[Any, Callable[[Any], Any]] = {}


def read_listing(body: bytes, cl: type[T], envelope: Envelope, *, url: str = "") -> list[T]:
    """The records of one listing page: ``body`` decoded, its envelope read, each record
    structured into ``cl``. Pure (no I/O). A wrong shape raises :class:`ResponseFormatError`
    naming the wire path (``$``, ``$.results``, ``$.Ticket[2].TicketID`` ...).

    The common case first: orjson decodes an object whose list the generated structurer
    accepts. Anything else is decoded again by ``json`` and structured by the detailed
    converter, which answer (where orjson and ``json`` differ: NaN, lone surrogates,
    non-UTF-8, integers beyond 64 bits, the answer is ``json``'s).

    Example: ``records = read_listing(body, TrainingRecord, ARENA_LISTING, url=url)``
    """
    key = envelope.key
    try:
        data = _orjson_loads(body)
        if type(data) is dict:
            records = data.get(key)
            if type(records) is list:
                fast: list[T] = _list_structurer(cl)(records)
                return fast
    except Exception:  # refused: the checked path below decides
        pass
    data = loads(body, url=url)
    if not isinstance(data, dict):
        raise ResponseFormatError(f"expected an object with {key!r}", path="$",
                                  excerpt=excerpt(body), url=url)
    records = data.get(key)
    if records is None and (envelope.empty_without_key or data.get("count") == 0):
        return []
    if envelope.lone and isinstance(records, dict):
        records = [records]
    if not isinstance(records, list):
        raise ResponseFormatError("expected a list", path=f"$.{key}", excerpt=excerpt(body),
                                  url=url)
    checked: list[T] = structure(records, list[cl], path=f"$.{key}",  # type: ignore[valid-type]
                                 url=url, body=body)
    return checked
