"""A small declarative validator for TOML tables: every error found, each naming file and key.

Klipper's habit: unknown keys are errors, and all problems are reported at once at start-up, so a
technician fixes the file in one pass instead of one restart per typo.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Check = Callable[[Any], str | None]  # returns an error text, or None when the value is fine


class Problems:
    """Collects config problems as 'FILE: key `path`: message' lines."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: list[str] = []

    def add(self, key: str, message: str) -> None:
        where = f"key `{key}`: " if key else ""
        self.lines.append(f"{self.source}: {where}{message}")

    def __bool__(self) -> bool:
        return bool(self.lines)


@dataclass(frozen=True)
class Field:
    """One key of a table: its TOML type(s), whether it is required, its default, extra check,
    and what the value becomes once it passed (`parse`: "100/5" -> Decimal(20))."""

    types: tuple[type, ...]
    required: bool = False
    default: Any = None
    check: Check | None = None
    parse: Callable[[Any], Any] | None = None


def opt(types: type | tuple[type, ...], default: Any = None, check: Check | None = None,
        parse: Callable[[Any], Any] | None = None) -> Field:
    return Field(types if isinstance(types, tuple) else (types,), False, default, check, parse)


def req(types: type | tuple[type, ...], check: Check | None = None) -> Field:
    return Field(types if isinstance(types, tuple) else (types,), True, None, check)


_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", float: "a number",
               dict: "a table", list: "an array"}


def _type_ok(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in types:
        return False  # TOML booleans are ints to Python; never accept one where a number is meant
    return isinstance(value, types)


def validate_table(table: Any, fields: Mapping[str, Field], path: str,
                   problems: Problems) -> dict[str, Any]:
    """Check one table against its fields; returns the values with defaults filled in."""
    if not isinstance(table, dict):
        problems.add(path, f"must be a table, got {type(table).__name__}")
        return {}
    out: dict[str, Any] = {}
    for key in table:
        if key not in fields:
            known = ", ".join(sorted(fields))
            problems.add(_join(path, key), f"unknown key (known keys here: {known})")
    for key, spec in fields.items():
        full = _join(path, key)
        if key not in table:
            if spec.required:
                problems.add(full, "missing (required)")
            out[key] = spec.default
            continue
        value = table[key]
        if not _type_ok(value, spec.types):
            wanted = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in spec.types)
            problems.add(full, f"must be {wanted}, got {type(value).__name__} {value!r}")
            out[key] = spec.default
            continue
        if spec.check is not None and (err := spec.check(value)) is not None:
            problems.add(full, err)
        elif spec.parse is not None:
            value = spec.parse(value)
        out[key] = value
    return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# ---- reusable checks -------------------------------------------------------------------------

def positive(value: Any) -> str | None:
    return None if value > 0 else f"must be greater than 0, got {value}"


def non_negative(value: Any) -> str | None:
    return None if value >= 0 else f"must be 0 or more, got {value}"


def non_empty(value: Any) -> str | None:
    return None if value.strip() else "must not be empty"


def one_of(*choices: Any) -> Check:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(map(repr, choices))}"
    return check


def in_range(low: int, high: int) -> Check:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"must be between {low} and {high}, got {value}"
    return check


def identifier(value: Any) -> str | None:
    ok = value and len(value) <= 64 and all(c.isalnum() or c in "-_." for c in value)
    return None if ok else "must be 1-64 characters of letters, digits, '-', '_' or '.'"


def time_zone(value: Any) -> str | None:
    """An IANA time zone name the tz database knows ('Europe/Paris', 'UTC')."""
    try:
        ZoneInfo(value)
    # a directory of the database ('Europe') raises IsADirectoryError, a path ValueError
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return f"unknown time zone {value!r} (an IANA name such as 'Europe/Paris' or 'UTC')"
    return None


def exact_ratio(value: Any) -> Decimal:
    """An exact ratio from an int, a decimal string ('0.5') or a fraction string ('100/5')."""
    if isinstance(value, int):
        return Decimal(value)
    text = str(value).strip()
    if "/" in text:
        num, _, den = text.partition("/")
        result = Decimal(num.strip()) / Decimal(den.strip())
    else:
        result = Decimal(text)
    if not result.is_finite() or result <= 0:
        raise InvalidOperation(text)
    return result


def ratio_check(value: Any) -> str | None:
    try:
        exact_ratio(value)
    except (InvalidOperation, ZeroDivisionError, ValueError):
        return "must be a positive integer or a string like \"100/5\" or \"2.5\""
    return None
