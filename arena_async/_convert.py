"""The converter of record: what a well-formed answer is, and what is wrong with any other.

:func:`structure` first asks the generated function of the type (``_codegen.structurer``,
accept-or-raise); whatever it refuses, ``_DETAILED`` decides: cattrs' detailed converter
(wire names from field metadata, strict primitives, UTC datetimes), the one fallback. It
gives the same result, or :class:`ResponseFormatError` naming the wire path, such as
``$.results[3].trainingplan.guid``. :func:`loads` decodes one body (``json``, the decoder
of record) and :func:`structure_json` does both; listings go through ``_envelope``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from typing import Any, TypeVar, cast

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

from ._codegen import structurer
from .errors import ResponseFormatError, excerpt
from .models._wire import (
    ALIASES,
    LONE,
    UNWRAP,
    WIRE,
    datetime_value,
    describe,
    float_value,
    wire_name,
)

__all__ = ["loads", "structure", "structure_json", "structurer", "wire_name"]

T = TypeVar("T")


def _strict(expected: type, label: str) -> Callable[[Any, Any], Any]:
    def hook(value: Any, _: Any) -> Any:
        # cattrs would coerce "5" -> 5 and 1.9 -> 1; a wrong type is a format error here.
        if type(value) is expected:
            return value
        raise TypeError(f"expected {label}, got {describe(value)}")

    return hook


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
                raise TypeError(f"expected an object, got {describe(value)}")
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
            raise TypeError(f"expected an object, got {describe(value)}")
        return inner(value, target)

    return structure


def _list_factory(target: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    inner = list_structure_factory(target, converter)

    def structure(value: Any, cl: Any) -> Any:
        # cattrs would split "bug" into ['b', 'u', 'g'] or iterate a dict's keys.
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {describe(value)}")
        return inner(value, cl)

    return structure


def _make(detailed: bool = True) -> cattrs.Converter:
    """A cattrs converter with this module's hooks (the library makes one: detailed)."""
    conv = cattrs.Converter(detailed_validation=detailed, forbid_extra_keys=False)
    # Primitive and datetime hooks first: the class hooks built later look them up.
    conv.register_structure_hook(str, _strict(str, "a string"))
    conv.register_structure_hook(int, _strict(int, "an integer"))
    conv.register_structure_hook(bool, _strict(bool, "a boolean"))
    conv.register_structure_hook(float, float_value)
    conv.register_structure_hook(datetime, datetime_value)
    conv.register_structure_hook_factory(is_sequence, _list_factory)
    conv.register_structure_hook_factory(attrs.has, _attrs_factory(detailed))
    return conv


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

