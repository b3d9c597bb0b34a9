"""The data sets of IEC 62056-21 readouts and DSMR telegrams mapped to gateway quantities.

The codes and tables are the shared OBIS map (drivers.obis); this is which of them a readout
maps and how its value texts are read. Only the meter's own channel (B absent or 0) and current
values (F absent or 255) are mapped here; `1.8.1*1` (a previous billing period) is not, and
`0-1:24.2.1` (an M-Bus gas meter on channel 1) is a sub-meter's reading
(drivers.iec62056.submeters).

Values come from the meter (or anyone on its port) behind a valid checksum: a number the bounded
context cannot hold, or a value without a unit where none is documented, is a `FrameError` for
that one data set, collected in `MappedReadout.errors`; the other data sets are still mapped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Final

from core.numbers import OutOfRange, exact_decimal
from core.quantities import QUANTITIES, base_name
from drivers.errors import FrameError
from drivers.iec62056.datasets import DataSet
from drivers.iec62056.timestamps import MeterTimestamp, parse_timestamp
from drivers.obis.codes import ObisCode, parse_code
from drivers.obis.tables import (
    ABSTRACT,
    DATE_CODE,
    DSMR_TIMESTAMP_CODE,
    ELECTRICITY,
    TIME_CODE,
    CodeKey,
)
from drivers.obis.units import NO_DOCUMENTED_UNITS, scale_to
from drivers.readings import Sample

_NUMBER: Final = re.compile(r"^[+-]?\d+(?:\.\d+)?$")
_HEX_TEXT: Final = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")

UnitTable = Mapping[CodeKey, str]

__all__ = ["DataSetRefused", "MappedReadout", "exact_number", "map_datasets",
           "parse_meter_timestamp", "text_value"]


class DataSetRefused(FrameError):
    """One data set of a good frame whose value cannot be stored; names its address."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        super().__init__(f"{address}: {reason}")


@dataclass
class MappedReadout:
    samples: list[Sample] = field(default_factory=list)
    meter_time: datetime | None = None  # the meter's local wall-clock time, naive
    meter_time_dst: bool | None = None  # DSMR S/W flag of meter_time (None: no flag sent)
    meter_time_utc: datetime | None = None  # aware; only when the flag and the offset give it
    max_demand_time: str | None = None  # ISO 8601, naive local time of the maximum demand
    skipped: list[str] = field(default_factory=list)  # known codes whose value was unusable
    errors: list[DataSetRefused] = field(default_factory=list)  # out of range, no unit...


def exact_number(text: str) -> Decimal | None:
    """The exact Decimal of a register value ('001846.0', '+00026', ' 20000'); None if not one.

    Raises core.numbers.OutOfRange for a number the bounded context cannot hold (26+ digits).
    """
    stripped = text.strip()
    return exact_decimal(stripped) if _NUMBER.match(stripped) else None


def parse_meter_timestamp(text: str) -> datetime | None:
    """DSMR `YYMMDDhhmmss[S|W]` or IEC `YY-MM-DD hh:mm[:ss]` -> naive datetime, None if neither."""
    stamp = parse_timestamp(text)
    return None if stamp is None else stamp.local


def text_value(quantity: str, value: str) -> str:
    """A text value as stored: DSMR equipment ids are hex-encoded ASCII, decoded when printable."""
    if quantity == "serial_number" and _HEX_TEXT.match(value):
        decoded = bytes.fromhex(value).decode("latin-1")
        if decoded.isprintable():
            return decoded.strip()
    return value.strip()


def _combine_date_time(date_text: str | None, time_text: str | None) -> datetime | None:
    if date_text is None or time_text is None:
        return None
    date_digits = date_text.strip().replace("-", "")[-6:]  # some meters prefix a century digit
    time_digits = time_text.strip().replace(":", "")
    try:
        return datetime.strptime(date_digits + time_digits, "%y%m%d%H%M%S")
    except ValueError:
        return None


def _numeric_sample(quantity: str, code: ObisCode, data: DataSet, units: UnitTable) -> Sample:
    """The first usable value group of the data set; DataSetRefused when none is usable."""
    try:
        return _first_usable(quantity, code, data, units)
    except OutOfRange as error:  # behind a valid checksum: refuse this data set, keep the rest
        raise DataSetRefused(data.address, str(error)) from None


def _first_usable(quantity: str, code: ObisCode, data: DataSet, units: UnitTable) -> Sample:
    canonical = QUANTITIES[base_name(quantity)]
    unitless = False
    for group in data.values:
        number = exact_number(group.value)
        if number is None:
            continue  # a timestamp group (1.6.0) or a placeholder
        unit = group.unit or units.get(code.cde)
        if not unit:
            unitless = True  # never guessed: the canonical unit may be a thousand times off
            continue
        scaled = scale_to(number, unit, canonical)
        if scaled is not None:
            return Sample(quantity, scaled, canonical)
    reason = "a value without a unit, and none is documented for the code" if unitless \
        else "no usable value"
    raise DataSetRefused(data.address, f"{reason} in {data.to_text()[:60]!r}")


def _map_one(code: ObisCode, data: DataSet, out: MappedReadout, units: UnitTable) -> None:
    if code.a in (None, "0") and code.cde in ABSTRACT and data.values:
        quantity = ABSTRACT[code.cde]
        out.samples.append(Sample(quantity, text_value(quantity, data.values[0].value), ""))
        return
    if code.a not in (None, "1") or code.cde not in ELECTRICITY:
        return
    quantity = ELECTRICITY[code.cde]
    try:
        sample = _numeric_sample(quantity, code, data, units)
    except DataSetRefused as error:
        out.errors.append(error)
        out.skipped.append(str(error))
        return
    out.samples.append(sample)
    if quantity == "max_demand_active_power":
        for group in data.values:
            stamp = parse_meter_timestamp(group.value)
            if stamp is not None:
                out.max_demand_time = stamp.isoformat()


def _set_meter_time(out: MappedReadout, stamp: MeterTimestamp, offset_min: int | None) -> None:
    out.meter_time, out.meter_time_dst = stamp.local, stamp.dst
    out.meter_time_utc = None if offset_min is None else stamp.to_utc(offset_min)


def map_datasets(
    sets: list[DataSet] | tuple[DataSet, ...], *, units: UnitTable = NO_DOCUMENTED_UNITS,
    utc_offset_min: int | None = None,
) -> MappedReadout:
    """Samples (exact values, canonical units) and the meter's clock from a list of data sets.

    `units`: the documented unit of codes whose values may come without one (DSMR_UNITS for P1
    telegrams). `utc_offset_min`: the meter's winter-time offset from UTC; with it, a DSMR meter
    time keeps its S/W flag as the UTC offset of `meter_datetime` (`...T22:33:25+02:00`).
    """
    out = MappedReadout()
    date_text = time_text = None
    for data in sets:
        code = parse_code(data.address)
        if code is None or code.b not in (None, "0") or not code.current:
            continue
        first = data.values[0].value if data.values else None
        if code.cde == TIME_CODE and code.a in (None, "0", "1"):
            time_text = first
        elif code.cde == DATE_CODE and code.a in (None, "0", "1"):
            date_text = first
        elif code.cde == DSMR_TIMESTAMP_CODE and code.a == "0" and first is not None:
            stamp = parse_timestamp(first)
            if stamp is not None:
                _set_meter_time(out, stamp, utc_offset_min)
        else:
            _map_one(code, data, out, units)
    if out.meter_time is None:
        out.meter_time = _combine_date_time(date_text, time_text)
    if out.meter_time is not None:
        stamp = MeterTimestamp(out.meter_time, out.meter_time_dst)
        out.samples.append(Sample("meter_datetime", stamp.isoformat(utc_offset_min), ""))
    return out
