"""Manufacturer payload formats described as data: fixed-offset and tag-coded field layouts.

A quirk (registry.py) names one of these per manufacturer CI field or for the 0x0F
manufacturer data of an EN 13757-3 telegram; decoding gives ordinary `Record`s, so mapping,
the CLI and the receiver treat them like standard records. Nothing here raises on meter data
beyond FrameError: a layout that does not fit the bytes is a FrameError for that telegram.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, Inexact, Rounded
from typing import Final

from core.numbers import BOUNDED
from drivers.errors import FrameError
from drivers.mbus.records import Record
from drivers.mbus.values import date_g

# Field encodings
UINT: Final = "uint"          # unsigned little-endian binary
UINT_BE: Final = "uint_be"    # unsigned big-endian binary
APATOR_PACKED: Final = "apator_packed"  # litres: 4-bit low digit, 2-bit decade, 20-bit high part
SECONDS_2000: Final = "seconds_2000"    # date-time: seconds since 2000-01-01 00:00 (meter time)
BCD: Final = "bcd"            # packed BCD, least significant byte first
TECHEM_DATE: Final = "techem_date"      # 16 bits: day 0-4, month 5-8, 2-digit year 9-15
DATE_G: Final = "date_g"      # EN 13757-3 type G


@dataclass(frozen=True, slots=True)
class Field:
    """One value in a manufacturer payload: where it is, how it is coded, what it means.

    `kind` / `unit` / `exponent` follow the Record vocabulary (volume m3 10^-3 is litres);
    `storage` 0 is the current value, another number a historic one (the billing value)."""

    offset: int
    size: int
    kind: str
    unit: str = ""
    exponent: int = 0
    encoding: str = UINT
    storage: int = 0
    signed: bool = False
    divisor: int = 1   # a scale that is no power of ten (Apator 08 counts thirds of a litre)


@dataclass(frozen=True, slots=True)
class Sum:
    """A current register the meter does not send but implies: the sum of two fields' values
    (Techem sends the billing value and the consumption since; the register is their sum)."""

    kind: str
    unit: str
    parts: tuple[int, int]     # indexes into the layout's fields
    storage: int = 0


@dataclass(frozen=True, slots=True)
class FixedLayout:
    """Fields at fixed offsets from the first byte after the CI field (or the 0x0F byte)."""

    fields: tuple[Field, ...]
    sums: tuple[Sum, ...] = ()
    min_size: int = 0

    def decode(self, data: bytes) -> list[Record]:
        need = max([self.min_size] + [f.offset + f.size for f in self.fields])
        if len(data) < need:
            raise FrameError(f"manufacturer payload has {len(data)} bytes, layout needs {need}")
        records = [_field_record(field, data[field.offset:field.offset + field.size])
                   for field in self.fields]
        for rule in self.sums:
            total = _sum_record(rule, records)
            if total is not None:
                records.append(total)
        return records


@dataclass(frozen=True, slots=True)
class TaggedLayout:
    """A run of (tag byte, fixed-size body) fields after `skip` header bytes: each tag has one
    body size (`sizes`), a few carry a value (`values`: tag -> Field whose offset is within the
    body). With `leads`, the data is a whole TPL payload: 0x2F fillers, one of the lead bytes,
    then the `skip` bytes. The run ends at a padding byte, at the trailing checksum, or at an
    unknown tag (what was read so far is kept; the bytes stay in the raw record)."""

    skip: int
    sizes: dict[int, int]
    values: dict[int, Field]
    padding: int = 0xFF
    trailer: int = 2
    leads: frozenset[int] = frozenset()

    def decode(self, data: bytes) -> list[Record]:
        records: list[Record] = []
        pos = 0
        if self.leads:
            while pos < len(data) and data[pos] == 0x2F:
                pos += 1
            if pos >= len(data) or data[pos] not in self.leads:
                raise FrameError("manufacturer payload does not start with its lead byte", pos)
            pos += 1
        pos += self.skip
        end = len(data) - self.trailer
        while pos < end and data[pos] != self.padding:
            tag = data[pos]
            size = self.sizes.get(tag)
            if size is None or pos + 1 + size > end:
                break
            field = self.values.get(tag)
            if field is not None:
                body = data[pos + 1:pos + 1 + size]
                records.append(_field_record(field, body[field.offset:field.offset + field.size]))
            pos += 1 + size
        return records


@dataclass(frozen=True, slots=True)
class SelectLayout:
    """One of several fixed layouts, chosen by the byte at `at` (Qundis: the VIF of the block
    says litres, 100 Wh, kWh, 100 kJ or MJ). An unknown selector byte decodes nothing."""

    at: int
    choices: dict[int, FixedLayout]
    size: int = 0    # the block size the layouts are for (0: any)

    def decode(self, data: bytes) -> list[Record]:
        if len(data) <= self.at or (self.size and len(data) != self.size):
            return []
        choice = self.choices.get(data[self.at])
        return choice.decode(data) if choice is not None else []


@dataclass(frozen=True, slots=True)
class PrefixedLayout:
    """A layout after a counted prefix: byte 0 says how many bytes follow before one marker
    byte, then `inner` starts (Apator e-ITN CI 0xB6: n, n bytes, 0xA0, the A0 layout)."""

    inner: FixedLayout
    marker: int

    def decode(self, data: bytes) -> list[Record]:
        start = 1 + data[0] + 1 if data else 0
        if not data or len(data) <= start or data[start - 1] != self.marker:
            raise FrameError("manufacturer payload prefix does not match its layout")
        return self.inner.decode(data[start:])


Layout = FixedLayout | TaggedLayout | SelectLayout | PrefixedLayout
# A scale such as 1/3 is rarely exact: the quotient is rounded to BOUNDED's 34 digits
_QUOTIENT: Final = BOUNDED.copy()
_QUOTIENT.traps[Inexact] = _QUOTIENT.traps[Rounded] = False
_EPOCH_2000: Final = datetime(2000, 1, 1)


def _field_record(field: Field, raw: bytes) -> Record:
    value: Decimal | str | None
    if field.encoding in (UINT, UINT_BE, APATOR_PACKED):
        value = _number(field, raw)
    elif field.encoding == BCD:
        digits = raw[::-1].hex()
        if not digits.isdigit():
            return Record(field.kind, field.unit, None, field.storage, raw=raw)
        value = Decimal(int(digits)).scaleb(field.exponent, BOUNDED)
    else:
        value = _date(field.encoding, raw)
    if value is None:
        return Record(field.kind, field.unit, None, field.storage, raw=raw)
    return Record(field.kind, field.unit, value, field.storage)


def _number(field: Field, raw: bytes) -> Decimal:
    if field.encoding == UINT_BE:
        number = int.from_bytes(raw, "big")
    else:
        number = int.from_bytes(raw, "little", signed=field.signed)
    if field.encoding == APATOR_PACKED:
        number = ((number >> 8) * 16 + (number & 0x0F)) * 10 ** ((number >> 4) & 0x03)
    value = Decimal(number).scaleb(field.exponent, BOUNDED)
    if field.divisor != 1:
        value = _QUOTIENT.divide(value, field.divisor)
    return value


def _date(encoding: str, raw: bytes) -> str | None:
    word = int.from_bytes(raw[:2], "little")
    if encoding == DATE_G:
        return date_g(raw)
    if encoding == SECONDS_2000:
        moment = _EPOCH_2000 + timedelta(seconds=int.from_bytes(raw, "little"))
        return moment.isoformat()
    if encoding == TECHEM_DATE:
        day, month, year = word & 0x1F, (word >> 5) & 0x0F, (word >> 9) & 0x7F
        return _iso(year, month, day)
    raise FrameError(f"unknown manufacturer field encoding {encoding}")


def _iso(year: int, month: int, day: int) -> str | None:
    """Build a type G date from the fields (the same calendar rules: None if not a date)."""
    if year > 99:
        return None
    low = (day & 0x1F) | ((year & 0x07) << 5)
    high = (month & 0x0F) | ((year >> 3) << 4)
    return date_g(bytes((low, high)))


def _sum_record(rule: Sum, records: list[Record]) -> Record | None:
    first, second = (records[i].value for i in rule.parts)
    if not isinstance(first, Decimal) or not isinstance(second, Decimal):
        return None
    return Record(rule.kind, rule.unit, BOUNDED.add(first, second), rule.storage)
