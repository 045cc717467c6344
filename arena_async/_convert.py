"""The one cattrs converter: wire names from field metadata, strict primitives, UTC datetimes.

Two converters share the same hooks: a fast one (no detailed validation) structures every
response; only when it fails is the body structured again by the detailed one, whose
error tree is turned into a wire path such as ``$.results[3].trainingplan.guid``.
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

from .errors import ResponseFormatError, excerpt
from .models._wire import ALIASES, LONE, UNWRAP, WIRE

__all__ = ["loads", "structure", "structure_json", "wire_name"]

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


def _optional_factory(target: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    # cattrs dispatches on the inner type at every call; resolve it once.
    inner_type = next(a for a in get_args(target) if a is not NoneType)
    inner = converter.get_structure_hook(inner_type)

    def structure(value: Any, _: Any) -> Any:
        return None if value is None else inner(value, inner_type)

    return structure


def _make(detailed: bool) -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=detailed, forbid_extra_keys=False)
    # Primitive and datetime hooks first: the class hooks built later look them up.
    conv.register_structure_hook(str, _strict(str, "a string"))
    conv.register_structure_hook(int, _strict(int, "an integer"))
    conv.register_structure_hook(bool, _strict(bool, "a boolean"))
    conv.register_structure_hook(float, _float)
    conv.register_structure_hook(datetime, _datetime)
    conv.register_structure_hook_factory(is_sequence, _list_factory)
    if not detailed:  # the detailed converter keeps cattrs' own path for error notes
        conv.register_structure_hook_factory(_is_optional, _optional_factory)
    conv.register_structure_hook_factory(attrs.has, _attrs_factory(detailed))
    return conv


_FAST = _make(detailed=False)
_DETAILED = _make(detailed=True)


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
        return cast(T, _FAST.structure(value, cl))
    except Exception:
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
    return cast(T, result)  # the fast converter failed where the detailed one did not


def loads(body: bytes, *, url: str = "") -> Any:
    """Decode a JSON body; anything undecodable raises :class:`ResponseFormatError`."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
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
