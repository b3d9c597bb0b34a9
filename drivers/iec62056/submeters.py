"""DSMR M-Bus sub-meters: the gas, water or heat meters a P1 meter reads on channels n = 1..4.

Each channel carries its device type `0-n:24.1.0(003)` (EN 13757-3: 3 gas, 7 water, 4 heat),
its equipment id `0-n:96.1.0(4730...)` (hex-encoded ASCII) and its last value with the capture
time the sub-meter gave: `0-1:24.2.1(230925160000S)(04611.403*m3)`. A sub-meter reports every
5 minutes (gas: every hour on DSMR 4), so the capture time, not the telegram's arrival, is the
reading's timestamp; it keeps its S/W flag, which makes the conversion to UTC exact.

A value is refused (a `DataSetRefused`, a FrameError for that data set; the others are still
mapped) when its number does not fit the bounded context, its capture time has no S/W flag, or it
has no unit: the unit of 24.2.1 depends on the device (m3, GJ), and a unitless value is the
empty-channel placeholder `(700101010000W)(00000000)`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, DecimalException, Inexact, Rounded, localcontext
from typing import Final

from core.numbers import BOUNDED, OutOfRange
from drivers.iec62056.datasets import DataSet
from drivers.iec62056.mapping import DataSetRefused, exact_number, text_value
from drivers.iec62056.timestamps import parse_timestamp
from drivers.obis.codes import ObisCode, parse_code
from drivers.obis.units import scale_to
from drivers.readings import Sample

CHANNELS: Final = range(1, 5)  # DSMR 5.0.2: up to four M-Bus devices
DEVICE_TYPE_CODE: Final = ("24", "1", "0")
EQUIPMENT_ID_CODE: Final = ("96", "1", "0")
# last value with capture time: 24.2.1 (DSMR; gas temperature-corrected), 24.2.3 (Fluvius
# e-MUCS gas, not corrected)
VALUE_CODES: Final = frozenset({("24", "2", "1"), ("24", "2", "3")})
COOLING_TYPES: Final = frozenset({10, 11})  # EN 13757-3 cooling meters (outlet / inlet)
VOLUME_UNITS: Final = frozenset({"m3", "dm3"})
ENERGY_UNITS: Final = frozenset({"kWh", "MWh"})
# Heat meters count in GJ (DSMR 5.0.2) or MJ: joules to kWh divides by 3.6, never exact. The one
# rounded conversion: to 1 Wh, a thousand times finer than a 0.001 GJ (278 Wh) register step.
JOULE_UNITS: Final = {"GJ": 9, "MJ": 6}
_J_PER_KWH: Final = Decimal(3_600_000)
KWH_RESOLUTION: Final = Decimal("0.001")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SubMeterReading:
    """One value of the sub-meter on M-Bus channel `channel`, at the capture time it gave."""

    channel: int
    captured_utc: datetime  # aware
    dst: bool  # the capture time's S (summer) flag
    samples: tuple[Sample, ...]
    device_type: int | None = None
    equipment_id: str | None = None

    @property
    def ts_ms(self) -> int:
        return (self.captured_utc - _EPOCH) // timedelta(milliseconds=1)


@dataclass
class _Channel:
    device_type: int | None = None
    equipment_id: str | None = None


def _joules_to_kwh(value: Decimal, power: int) -> Decimal:
    # the bounded context's limits stay; only the rounding to KWH_RESOLUTION is allowed
    context = BOUNDED.copy()
    context.traps[Inexact] = context.traps[Rounded] = False
    try:
        with localcontext(context):
            return (value.scaleb(power) / _J_PER_KWH).quantize(KWH_RESOLUTION)
    except DecimalException as error:
        raise OutOfRange(f"{value!s:.40} does not fit in kWh") from error


def _sample(value: Decimal, unit: str, device_type: int | None) -> Sample | None:
    """The sub-meter's register in gateway units; None for a unit of no known quantity."""
    if unit in VOLUME_UNITS:
        volume = scale_to(value, unit, "m3")
        return None if volume is None else Sample("volume", volume, "m3")
    energy_name = "cooling_energy" if device_type in COOLING_TYPES else "heat_energy"
    if unit in ENERGY_UNITS:
        energy = scale_to(value, unit, "kWh")
        return None if energy is None else Sample(energy_name, energy, "kWh")
    if unit in JOULE_UNITS:
        return Sample(energy_name, _joules_to_kwh(value, JOULE_UNITS[unit]), "kWh")
    return None


def _channel_of(code: ObisCode) -> int | None:
    if code.a != "0" or code.b is None or not code.current or int(code.b) not in CHANNELS:
        return None
    return int(code.b)


def _reading(channel: int, data: DataSet, info: _Channel, offset_min: int) -> SubMeterReading:
    if len(data.values) != 2:
        raise DataSetRefused(data.address, "expected (capture time)(value*unit), "
                                           f"got {data.to_text()[:60]!r}")
    stamp = parse_timestamp(data.values[0].value)
    captured = None if stamp is None else stamp.to_utc(offset_min)
    if stamp is None or stamp.dst is None or captured is None:
        raise DataSetRefused(data.address, f"capture time {data.values[0].value[:20]!r} is not "
                                           "YYMMDDhhmmss with its S/W flag")
    group = data.values[1]
    try:
        number = exact_number(group.value)
        sample = None if number is None or not group.unit else \
            _sample(number, group.unit, info.device_type)
    except OutOfRange as error:
        raise DataSetRefused(data.address, str(error)) from None
    if sample is None:
        raise DataSetRefused(data.address, f"no value with a known unit in {group.to_text()!r:.60}")
    samples = [sample, Sample("meter_datetime", stamp.isoformat(offset_min), "")]
    if info.equipment_id:
        samples.append(Sample("serial_number", info.equipment_id, ""))
    return SubMeterReading(channel, captured, stamp.dst, tuple(samples), info.device_type,
                           info.equipment_id)


def _describe(described: dict[int, _Channel], code: ObisCode, channel: int,
              data: DataSet) -> None:
    first = data.values[0].value.strip() if data.values else ""
    info = described.setdefault(channel, _Channel())
    if code.cde == DEVICE_TYPE_CODE and first.isdigit() and len(first) <= 3:
        info.device_type = int(first)
    elif code.cde == EQUIPMENT_ID_CODE and first:
        info.equipment_id = text_value("serial_number", first)


def map_submeters(
    sets: list[DataSet] | tuple[DataSet, ...], utc_offset_min: int,
    channels: Collection[int] = CHANNELS,
) -> tuple[list[SubMeterReading], list[DataSetRefused]]:
    """The readings of the sub-meters on `channels`, and one error per refused data set.

    `utc_offset_min` is the meter clock's winter-time (W) offset from UTC (60 for CET). Other
    channels are not looked at: an empty one sends a placeholder that would be refused forever.
    """
    described: dict[int, _Channel] = {}
    values: list[tuple[int, DataSet]] = []
    for data in sets:
        code = parse_code(data.address)
        channel = None if code is None else _channel_of(code)
        if code is None or channel is None or channel not in channels:
            continue
        if code.cde in VALUE_CODES:
            values.append((channel, data))  # read after the whole telegram: ids may follow
        else:
            _describe(described, code, channel, data)
    readings: list[SubMeterReading] = []
    errors: list[DataSetRefused] = []
    for channel, data in values:
        try:
            readings.append(_reading(channel, data, described.get(channel, _Channel()),
                                     utc_offset_min))
        except DataSetRefused as error:
            errors.append(error)
    return readings, errors
