"""Argument checks, one rule each: every client argument is checked here before anything is
sent, and a bad one raises :class:`ValueError` naming the argument and what it must be.

Numbers refuse ``bool`` (``True`` is an ``int`` to Python, never a count to a caller) and
anything that only looks like a number (``"5"``, ``1.0`` for an integer). Infinity and NaN
are refused wherever a finite quantity is meant (seconds, a rate). A message never repeats
a value that could be a secret: only these non-secret arguments are checked here.

Example::

    check_int("page_size", 0, minimum=1, maximum=400)  # page_size must be 1..400, got 0
    check_rate(float("inf"))  # requests_per_second must be a finite number > 0 or None ...
"""

from __future__ import annotations

import math
import unicodedata

__all__ = [
    "check_deadline",
    "check_flag",
    "check_int",
    "check_max_items",
    "check_offset",
    "check_one_token",
    "check_optional_flag",
    "check_page_size",
    "check_positive_int",
    "check_rate",
    "check_seconds",
    "check_text",
    "check_timeout",
    "check_workspace_id",
]


def _requirement(minimum: int, maximum: int | None, optional: bool) -> str:
    """What an integer argument must be, as a message says it."""
    bound = f"in {minimum}..{maximum}" if maximum is not None else f">= {minimum}"
    return f"{'None or ' if optional else ''}an integer {bound}"


def check_int(name: str, value: object, *, minimum: int, maximum: int | None = None,
              optional: bool = False) -> int | None:
    """An ``int`` in ``minimum..maximum`` (no maximum when None); None too if ``optional``.

    A value of the wrong type is told the whole requirement (``page_size must be an integer
    in 1..400, got '5'``); an integer out of range, the range (``page_size must be 1..400,
    got 0``, ``offset must be >= 0, got -1``), except where the range alone would read
    oddly: ``None or an integer >= 0`` when None is allowed, ``an integer >= 1`` for counts.

    Example: ``check_int("offset", -1, minimum=0)`` raises ``offset must be >= 0, got -1``.
    """
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be {_requirement(minimum, maximum, optional)}, "
                         f"got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        if maximum is not None:
            what = f"{minimum}..{maximum}"
        elif optional or minimum >= 1:
            what = _requirement(minimum, maximum, optional)
        else:
            what = f">= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def check_positive_int(name: str, value: object) -> int:
    """An ``int`` >= 1 (bools refused): ``max_concurrency``, a bulk ``concurrency``.

    Example: ``check_positive_int("max_concurrency", 0)`` raises
    ``max_concurrency must be an integer >= 1, got 0``.
    """
    checked = check_int(name, value, minimum=1)
    assert checked is not None
    return checked


def check_page_size(value: object, *, maximum: int | None) -> int:
    """``page_size``: an ``int`` in 1..maximum (Arena: 400; Akana: no maximum).

    Example: ``check_page_size(401, maximum=400)`` raises ``page_size must be 1..400, got 401``.
    """
    checked = check_int("page_size", value, minimum=1, maximum=maximum)
    assert checked is not None
    return checked


def check_offset(name: str, value: object) -> int:
    """``offset`` / ``start``: an ``int`` >= 0.

    Example: ``check_offset("start", "3")`` raises ``start must be an integer >= 0, got '3'``.
    """
    checked = check_int(name, value, minimum=0)
    assert checked is not None
    return checked


def check_max_items(value: object) -> int | None:
    """``max_items``: None (no cap) or an ``int`` >= 0.

    Example: ``check_max_items(-1)`` raises ``max_items must be None or an integer >= 0, got -1``.
    """
    return check_int("max_items", value, minimum=0, optional=True)


def check_seconds(name: str, value: object, *, optional: bool = False) -> float | None:
    """A finite number of seconds > 0 (None too if ``optional``), as a float.

    Example: ``check_seconds("timeout", float("inf"))`` raises
    ``timeout must be a finite number of seconds > 0, got inf``.
    """
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not 0 < value < math.inf:  # NaN fails the comparison too
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


def check_timeout(value: object) -> float:
    """``timeout`` (seconds per attempt): a finite number > 0.

    Example: ``check_timeout(0)`` raises ``timeout must be a finite number of seconds > 0,
    got 0``.
    """
    checked = check_seconds("timeout", value)
    assert checked is not None
    return checked


def check_deadline(value: object) -> float | None:
    """``deadline`` (seconds for a call, all its retries): None or a finite number > 0.

    Example: ``check_deadline(-1)`` raises ``deadline must be a finite number of seconds > 0,
    got -1``.
    """
    return check_seconds("deadline", value, optional=True)


def check_rate(value: object) -> float | None:
    """``requests_per_second``: None (no cap) or a finite number > 0.

    Infinity is refused, not read as "no cap": None says that.
    Example: ``check_rate(float("inf"))`` raises ``requests_per_second must be a finite
    number > 0 or None (None: no cap), got inf``.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not 0 < value < math.inf:
        raise ValueError("requests_per_second must be a finite number > 0 or None "
                         f"(None: no cap), got {value!r}")
    return float(value)


def check_flag(name: str, value: object) -> bool:
    """A real ``bool`` (not a truthy string or 1).

    Example: ``check_flag("allow_insecure", "yes")`` raises
    ``allow_insecure must be True or False, got 'yes'``.
    """
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def check_optional_flag(name: str, value: object) -> bool | None:
    """None or a real ``bool``: a filter that None leaves out.

    Example: ``check_optional_flag("in_assembly", "yes")`` raises
    ``in_assembly must be True, False or None, got 'yes'``.
    """
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"{name} must be True, False or None, got {value!r}")
    return value


def check_text(name: str, value: object, *, blank: bool = True) -> str | None:
    """None or a non-empty ``str``; with ``blank=False`` not all whitespace either.

    Example: ``check_text("category_name", "")`` raises
    ``category_name must not be empty (None leaves the filter out)``.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string or None, got {type(value).__name__}")
    if not (value if blank else value.strip()):
        raise ValueError(f"{name} must not be empty{'' if blank else ' or blank'} "
                         "(None leaves the filter out)")
    return value


def check_one_token(name: str, value: str) -> str:
    """A string sent as it is (in a URL, a header or a login): no whitespace and no control
    characters (CR, LF, NUL, tab, DEL, the invisible format characters), which could cut
    a header or a request line or make a different value look the same. The value is never
    repeated: it may be a secret.

    Example: ``check_one_token("email", "me@example.com\\r\\nX: y")`` raises ``email must
    not contain spaces or control characters (CR, LF, NUL...): found '\\r' at index 14``.
    """
    for index, char in enumerate(value):
        if char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            raise ValueError(f"{name} must not contain spaces or control characters (CR, LF, "
                             f"NUL...): found {char!r} at index {index}")
    return value


#: Arena's workspace ids are 64-bit (``int64`` in the vendor's OpenAPI spec, a Java long):
#: anything above 2**63 - 1 cannot be one, and the server would refuse it as malformed.
MAX_WORKSPACE_ID = 2**63 - 1


def check_workspace_id(value: object) -> int | None:
    """``workspace_id``: None (the user's default workspace) or an ``int`` in
    1..2**63-1 (the spec's ``int64``; ids are positive).

    Example: ``check_workspace_id(-1)`` raises ``workspace_id must be 1..9223372036854775807
    (Arena's workspace ids are positive 64-bit integers), got -1``.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"workspace_id must be an integer or None, got "
                         f"{type(value).__name__}")
    if not 1 <= value <= MAX_WORKSPACE_ID:
        digits = len(str(abs(value)))
        shown = repr(value) if digits <= 40 else f"a {digits}-digit number"
        raise ValueError(f"workspace_id must be 1..{MAX_WORKSPACE_ID} (Arena's workspace ids "
                         f"are positive 64-bit integers), got {shown}")
    return value
