"""OBIS / EDIS codes of IEC 62056-21 readouts and DSMR telegrams mapped to gateway quantities.

The table is data: (C, D, E) of the code -> quantity name (see drivers.quantities). Only the
meter's own channel (B absent or 0) and current values (F absent or 255) are mapped; `1.8.1*1`
(a previous billing period) or `0-1:24.2.1` (an M-Bus gas meter on channel 1) are not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Final

from drivers.iec62056.datasets import DataSet, DataValue
from drivers.quantities import QUANTITIES, base_name
from drivers.readings import Sample

_CODE: Final = re.compile(
    r"^(?:(?P<a>\d{1,3})-(?P<b>\d{1,3}):)?(?P<c>[0-9]{1,3}|[CFLP])\.(?P<d>[0-9]{1,3}|[F])"
    r"(?:\.(?P<e>\d{1,3}))?(?:[*&](?P<f>\d{1,3}))?$"
)
_NUMBER: Final = re.compile(r"^[+-]?\d+(?:\.\d+)?$")


def _electricity_table() -> dict[tuple[str, str, str], str]:
    table: dict[tuple[str, str, str], str] = {}
    registers = {"1": "import_active_energy", "2": "export_active_energy",
                 "3": "import_reactive_energy", "4": "export_reactive_energy"}
    for c, name in registers.items():
        table[(c, "8", "0")] = name
        for tariff in range(1, 10):
            table[(c, "8", str(tariff))] = f"{name}_t{tariff}"
    for phase, (u, i, p) in enumerate((("32", "31", "21"), ("52", "51", "41"),
                                       ("72", "71", "61")), start=1):
        table[(u, "7", "0")] = f"voltage_l{phase}"
        table[(i, "7", "0")] = f"current_l{phase}"
        table[(p, "7", "0")] = f"active_power_l{phase}"
    table[("1", "7", "0")] = "active_power"
    table[("14", "7", "0")] = "frequency"
    table[("1", "6", "0")] = "max_demand_active_power"
    return table


ELECTRICITY: Final[dict[tuple[str, str, str], str]] = _electricity_table()
# Abstract objects (group A = 0 or absent).
ABSTRACT: Final[dict[tuple[str, str, str], str]] = {
    ("C", "1", "0"): "serial_number",
    ("96", "1", "1"): "serial_number",  # DSMR equipment identifier, hex-encoded ASCII
    ("F", "F", "0"): "error_flags",
}
TIME_CODE: Final = ("0", "9", "1")
DATE_CODE: Final = ("0", "9", "2")
DSMR_TIMESTAMP_CODE: Final = ("1", "0", "0")  # 0-0:1.0.0(YYMMDDhhmmssX)

# unit as written by meters -> (canonical unit, power of ten to reach it)
UNIT_SCALE: Final[dict[str, tuple[str, int]]] = {
    "kWh": ("kWh", 0), "Wh": ("kWh", -3), "MWh": ("kWh", 3),
    "kvarh": ("kvarh", 0), "varh": ("kvarh", -3), "Mvarh": ("kvarh", 3),
    "W": ("W", 0), "kW": ("W", 3), "MW": ("W", 6),
    "var": ("var", 0), "kvar": ("var", 3),
    "V": ("V", 0), "kV": ("V", 3), "A": ("A", 0), "mA": ("A", -3), "Hz": ("Hz", 0),
}


@dataclass(frozen=True, slots=True)
class ObisCode:
    a: str | None
    b: str | None
    c: str
    d: str
    e: str
    f: str | None

    @property
    def cde(self) -> tuple[str, str, str]:
        return (self.c, self.d, self.e)


@dataclass
class MappedReadout:
    samples: list[Sample] = field(default_factory=list)
    meter_time: datetime | None = None  # the meter's local wall-clock time, naive
    max_demand_time: str | None = None  # ISO 8601, naive local time of the maximum demand
    skipped: list[str] = field(default_factory=list)  # known codes whose value was unusable


def parse_code(address: str) -> ObisCode | None:
    """`1-0:1.8.1*255`, `1.8.1`, `32.7`, `F.F`, `C.1.0` -> ObisCode; None if not an OBIS code."""
    match = _CODE.match(address.strip())
    if match is None:
        return None
    g = match.groupdict()
    return ObisCode(g["a"], g["b"], g["c"], g["d"], g["e"] or "0", g["f"])


def exact_number(text: str) -> Decimal | None:
    """The exact Decimal of a register value ('001846.0', '+00026', ' 20000'); None if not one."""
    stripped = text.strip()
    return Decimal(stripped) if _NUMBER.match(stripped) else None


def scale_to(value: Decimal, unit: str | None, canonical: str) -> Decimal | None:
    """Convert exactly to the canonical unit; an absent unit means the canonical one."""
    if not unit:
        return value
    known = UNIT_SCALE.get(unit)
    if known is None or known[0] != canonical:
        return None
    scaled = value.scaleb(known[1])
    # kW -> W turns 2.589 into 2.589E+3; store the plain integer 2589 instead.
    return scaled.quantize(Decimal(1)) if scaled.as_tuple().exponent > 0 else scaled  # type: ignore[operator]


def parse_meter_timestamp(text: str) -> datetime | None:
    """DSMR `YYMMDDhhmmss[S|W]` or IEC `YY-MM-DD hh:mm[:ss]` -> naive datetime, None if neither."""
    text = text.strip().rstrip("SW")
    for pattern in ("%y%m%d%H%M%S", "%y-%m-%d %H:%M", "%y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    return None


def _combine_date_time(date_text: str | None, time_text: str | None) -> datetime | None:
    if date_text is None or time_text is None:
        return None
    date_digits = date_text.strip().replace("-", "")[-6:]  # some meters prefix a century digit
    time_digits = time_text.strip().replace(":", "")
    try:
        return datetime.strptime(date_digits + time_digits, "%y%m%d%H%M%S")
    except ValueError:
        return None


def _numeric_sample(quantity: str, values: tuple[DataValue, ...]) -> Sample | None:
    canonical = QUANTITIES[base_name(quantity)]
    for group in values:
        number = exact_number(group.value)
        if number is None:
            continue
        scaled = scale_to(number, group.unit, canonical)
        if scaled is not None:
            return Sample(quantity, scaled, canonical)
    return None


def _text_value(quantity: str, value: str) -> str:
    if quantity == "serial_number" and len(value) % 2 == 0 and re.fullmatch(r"[0-9A-Fa-f]+", value):
        decoded = bytes.fromhex(value).decode("latin-1")
        if decoded.isprintable():
            return decoded.strip()
    return value.strip()


def _map_one(code: ObisCode, data: DataSet, out: MappedReadout) -> None:
    if code.a in (None, "0") and code.cde in ABSTRACT and data.values:
        quantity = ABSTRACT[code.cde]
        out.samples.append(Sample(quantity, _text_value(quantity, data.values[0].value), ""))
        return
    if code.a not in (None, "1") or code.cde not in ELECTRICITY:
        return
    quantity = ELECTRICITY[code.cde]
    sample = _numeric_sample(quantity, data.values)
    if sample is None:
        out.skipped.append(f"{data.address}: no usable value in {data.to_text()!r}")
        return
    out.samples.append(sample)
    if quantity == "max_demand_active_power":
        for group in data.values:
            stamp = parse_meter_timestamp(group.value)
            if stamp is not None:
                out.max_demand_time = stamp.isoformat()


def map_datasets(sets: list[DataSet] | tuple[DataSet, ...]) -> MappedReadout:
    """Samples (exact values, canonical units) and the meter's clock from a list of data sets."""
    out = MappedReadout()
    date_text = time_text = None
    for data in sets:
        code = parse_code(data.address)
        if code is None or code.b not in (None, "0") or code.f not in (None, "255"):
            continue
        first = data.values[0].value if data.values else None
        if code.cde == TIME_CODE and code.a in (None, "0", "1"):
            time_text = first
        elif code.cde == DATE_CODE and code.a in (None, "0", "1"):
            date_text = first
        elif code.cde == DSMR_TIMESTAMP_CODE and code.a == "0" and first is not None:
            out.meter_time = parse_meter_timestamp(first)
        else:
            _map_one(code, data, out)
    if out.meter_time is None:
        out.meter_time = _combine_date_time(date_text, time_text)
    if out.meter_time is not None:
        out.samples.append(Sample("meter_datetime", out.meter_time.isoformat(), ""))
    return out
