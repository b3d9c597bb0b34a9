"""Compact profiles (EN 13757-3:2018 annex F, OMS vol. 2): one record holding a dated series.

A record whose VIFE is 0x1F (compact profile), 0x1E (compact profile with register numbers) or
0x13 (inverse compact profile) carries in its variable-length data a spacing control byte
(bits 0-3: the element's data field code, so its size and coding; bits 4-5: the spacing unit;
bits 6-7: absolute values, increments, decrements or signed differences), a spacing value
(1-250 units; 253 half a month; 254 one, three or six months by the unit; 0: not spaced in
time) and the elements. The profile belongs to a base value (the record of the same storage,
tariff, subunit and kind without the profile VIFE) and a base time (the date record of that
storage): element k lies k + 1 spacings after the base time (0x1F, 0x1E) or before it (0x13).
Increments accumulate from the base value. An all-FF element is "no value" (and ends an
incremental series). Nothing here raises on meter data: a profile it cannot read gives a
Series with no points and the reason.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

from core.numbers import BOUNDED
from drivers.mbus.records import Record

PROFILE_MODIFIERS: Final = frozenset(("compact_profile", "compact_profile_registers",
                                      "inverse_compact_profile"))
EXPONENT_PREFIX: Final = "exponent_"   # the profile record's power of ten (records.py adds it)
_SIZES: Final = {1: 1, 2: 2, 3: 3, 4: 4, 6: 6, 7: 8, 9: 1, 0xA: 2, 0xB: 3, 0xC: 4, 0xE: 6}
_BCD: Final = frozenset((9, 0xA, 0xB, 0xC, 0xE))
_MODES: Final = ("absolute", "increments", "decrements", "signed_difference")
_SECONDS: Final = (1, 60, 3600, 86400)
_UNITS: Final = ("s", "min", "h", "d")
_LONG_SPACING: Final = {(254, 1): 6, (254, 2): 3, (254, 3): 1}   # months
MAX_POINTS: Final = 255


@dataclass(frozen=True, slots=True)
class Point:
    """One element: the storage number it stands for, its time (ISO, None without a base
    time or when not spaced in time) and its value (None: the meter has none)."""

    storage: int
    at: str | None
    value: Decimal | None


@dataclass(frozen=True, slots=True)
class Series:
    kind: str
    unit: str
    storage: int          # the base storage; points count on from it
    tariff: int
    subunit: int
    mode: str             # absolute | increments | decrements | signed_difference
    spacing: str          # "1 month", "15 min", "half month", "none"
    points: tuple[Point, ...]
    problem: str = ""     # why there are no points (reserved spacing, element coding ...)


def series_of(records: list[Record]) -> list[Series]:
    """Every compact profile among `records`, expanded against its base value and time."""
    return [_series(r, records) for r in records
            if r.modifiers and PROFILE_MODIFIERS.intersection(r.modifiers)]


def _series(record: Record, records: list[Record]) -> Series:
    data = _profile_bytes(record)
    mode = _MODES[data[0] >> 6] if data else "absolute"
    empty = Series(record.kind, record.unit, record.storage, record.tariff, record.subunit,
                   mode, "none", ())
    if data is None:
        return _problem(empty, "profile VIFE on a record that is no variable-length field")
    if len(data) < 2:
        return _problem(empty, "profile shorter than its two header bytes")
    code, unit_bits, value = data[0] & 0x0F, (data[0] >> 4) & 0x03, data[1]
    size = _SIZES.get(code)
    if size is None:
        return _problem(empty, f"element data field {code:X} is no fixed-size number")
    step = _spacing(value, unit_bits)
    if step is None:
        return _problem(empty, f"reserved spacing value {value} (unit {unit_bits})")
    elements = [data[i:i + size] for i in range(2, len(data) - size + 1, size)][:MAX_POINTS]
    backwards = "inverse_compact_profile" in record.modifiers
    points = _points(record, records, elements, code, mode, step, backwards)
    return Series(record.kind, record.unit, record.storage, record.tariff, record.subunit,
                  mode, _spacing_text(value, unit_bits), points)


def _profile_bytes(record: Record) -> bytes | None:
    """The data of a profile record (records.py keeps an LVAR profile as hex and adds its
    exponent); None for a profile VIFE on anything else (a fixed-size number, a date)."""
    if not isinstance(record.value, str) or \
            not any(m.startswith(EXPONENT_PREFIX) for m in record.modifiers):
        return None
    try:
        return bytes.fromhex(record.value)
    except ValueError:
        return None


def _problem(series: Series, why: str) -> Series:
    return Series(series.kind, series.unit, series.storage, series.tariff, series.subunit,
                  series.mode, series.spacing, (), why)


def _spacing(value: int, unit_bits: int) -> tuple[str, int] | None:
    """("s", seconds) | ("months", n) | ("half", 1) | ("none", 0); None when reserved."""
    if value == 0:
        return "none", 0
    if 1 <= value <= 250:
        return "s", value * _SECONDS[unit_bits]
    if value == 253 and unit_bits == 3:
        return "half", 1
    months = _LONG_SPACING.get((value, unit_bits))
    return ("months", months) if months else None


def _spacing_text(value: int, unit_bits: int) -> str:
    if value == 0:
        return "none"
    if value <= 250:
        return f"{value} {_UNITS[unit_bits]}"
    if value == 253:
        return "half month"
    months = _LONG_SPACING[(value, unit_bits)]
    return f"{months} month" + ("s" if months > 1 else "")


def _points(record: Record, records: list[Record], elements: list[bytes], code: int,
            mode: str, step: tuple[str, int], backwards: bool) -> tuple[Point, ...]:
    exponent = _exponent(record)
    base_value = _base_value(record, records)
    moment = _base_time(record, records)
    running = base_value
    points = []
    for index, raw in enumerate(elements):
        if moment is not None and step[0] != "none":
            moment = _step(moment, step, -1 if backwards else 1)
        number = _element(raw, code, mode)
        if number is None:
            if mode != "absolute":
                break   # an incremental series ends at its first missing element
            points.append(Point(record.storage + 1 + index, _iso(moment), None))
            continue
        value = Decimal(number).scaleb(exponent, BOUNDED)
        if mode != "absolute":
            if running is None:
                break   # increments without a base value are no readings
            running = _accumulate(running, value, mode, backwards)
            value = running
        points.append(Point(record.storage + 1 + index, _iso(moment), value))
    return tuple(points)


def _exponent(record: Record) -> int:
    for modifier in record.modifiers:
        if modifier.startswith(EXPONENT_PREFIX):
            return int(modifier[len(EXPONENT_PREFIX):])
    return 0


def _element(raw: bytes, code: int, mode: str) -> int | None:
    if all(b == 0xFF for b in raw):
        return None
    if code in _BCD:
        digits = raw[::-1].hex()
        return int(digits) if digits.isdigit() else None
    signed = mode in ("absolute", "signed_difference")
    number = int.from_bytes(raw, "little", signed=signed)
    if signed and number == -(1 << (8 * len(raw) - 1)):
        return None   # the most negative value codes "illegal" (type B, annex A)
    return number


def _accumulate(running: Decimal, delta: Decimal, mode: str, backwards: bool) -> Decimal:
    # forward in time: increments add, decrements subtract, a signed difference adds;
    # backwards each of these is undone (the older reading)
    sign = {"increments": 1, "decrements": -1, "signed_difference": 1}[mode]
    if backwards:
        sign = -sign
    return BOUNDED.add(running, delta) if sign > 0 else BOUNDED.subtract(running, delta)


def _base_value(record: Record, records: list[Record]) -> Decimal | None:
    for other in records:
        if (other.kind, other.unit, other.storage, other.tariff, other.subunit) == \
                (record.kind, record.unit, record.storage, record.tariff, record.subunit) \
                and isinstance(other.value, Decimal) \
                and not PROFILE_MODIFIERS.intersection(other.modifiers):
            return other.value
    return None


def _base_time(record: Record, records: list[Record]) -> datetime | None:
    for other in records:
        if other.kind in ("date", "datetime") and other.storage == record.storage \
                and isinstance(other.value, str):
            try:
                return datetime.fromisoformat(other.value)
            except ValueError:
                return None
    return None


def _step(moment: datetime, step: tuple[str, int], direction: int) -> datetime | None:
    kind, amount = step
    try:
        if kind == "s":
            return moment + timedelta(seconds=direction * amount)
        if kind == "months":
            return _add_months(moment, direction * amount)
        return _half_month(moment, direction)
    except (OverflowError, ValueError):
        return None


def _add_months(moment: datetime, months: int) -> datetime:
    """A month end stays a month end (31 Jan + 1 month is 29 Feb in a leap year)."""
    last = calendar.monthrange(moment.year, moment.month)[1]
    total = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(total, 12)
    length = calendar.monthrange(year, month + 1)[1]
    day = length if moment.day == last else min(moment.day, length)
    return moment.replace(year=year, month=month + 1, day=day)


def _half_month(moment: datetime, direction: int) -> datetime:
    """Half months run from the 1st and the 16th."""
    if direction > 0:
        if moment.day <= 15:
            return moment.replace(day=16)
        return _add_months(moment.replace(day=1), 1)
    if moment.day >= 16:
        return moment.replace(day=1)
    return _add_months(moment.replace(day=1), -1).replace(day=16)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.hour == moment.minute == moment.second == 0:
        return moment.date().isoformat()
    return moment.isoformat(timespec="seconds" if moment.second else "minutes")
