"""Map decoded EN 13757-3 records onto the gateway's quantities (core.quantities).

Unit conversions run under core.numbers.BOUNDED: a converted value out of range is a FrameError
for that record (reported to the caller, counted per meter), never an exception that leaves
the driver. Records without a value (invalid date, value out of range) give no sample.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, DecimalException, Inexact, Rounded
from typing import Final

from core.numbers import BOUNDED, OutOfRange
from drivers.errors import FrameError
from drivers.mbus.records import Record
from drivers.readings import Sample

ELECTRICITY: Final = 0x02
COOLING_TYPES: Final = frozenset((0x0A, 0x0B))
_KILO: Final = Decimal("0.001")
_J_PER_KWH: Final = Decimal(3600000)
_SECONDS: Final = {"s": 1, "min": 60, "h": 3600, "d": 86400}
_FLOW_TO_M3H: Final = {"m3/h": Decimal(1), "m3/min": Decimal(60), "m3/s": Decimal(3600)}
_DIRECT: Final = {  # kind -> (quantity, unit the record must have)
    "volume": ("volume", "m3"),
    "flow_temperature": ("flow_temperature", "C"),
    "return_temperature": ("return_temperature", "C"),
    "temperature_difference": ("temperature_difference", "K"),
    "external_temperature": ("external_temperature", "C"),
    "heat_cost_allocation": ("heat_cost_allocator", "HCA"),
    "voltage": ("voltage", "V"),
    "current": ("current", "A"),
}
_TEXT: Final = {"datetime": "meter_datetime", "fabrication_number": "serial_number",
                "error_flags": "error_flags"}
# J -> kWh and J/h -> W divide by 3600000 / 3600: rarely exact, so the quotient is rounded to
# BOUNDED's 34 significant digits (half even); same exponent bounds, every other trap kept.
_QUOTIENT: Final = BOUNDED.copy()
_QUOTIENT.traps[Inexact] = _QUOTIENT.traps[Rounded] = False


Convert = Callable[[Decimal], Decimal]


def _same(value: Decimal) -> Decimal:
    return value    # record values never carry a positive exponent (see records._scaled)


def _times(factor: Decimal | int) -> Convert:
    if factor == 1:
        return _same    # x * 1 is x itself (same digits and exponent), already within bounds
    return lambda value: BOUNDED.multiply(value, factor)


def _divided(divisor: Decimal | int) -> Convert:
    return lambda value: _plain(_QUOTIENT.divide(value, divisor))


def _kilo(value: Decimal) -> Decimal:
    return value.scaleb(-3, BOUNDED)


_ENERGY_TO_KWH: Final[dict[str, Convert]] = {"Wh": _kilo, "J": _divided(_J_PER_KWH)}
_POWER_TO_W: Final[dict[str, Convert]] = {"W": _same, "J/h": _divided(3600)}


def _target(record: Record, device_type: int) -> tuple[str, str, Convert] | None:
    """(quantity, unit, value converter) for a numeric record header, or None."""
    kind, unit = record.kind, record.unit
    if kind == "energy" and unit in _ENERGY_TO_KWH:
        if device_type == ELECTRICITY:
            name = "import_active_energy"
        else:
            name = "cooling_energy" if device_type in COOLING_TYPES else "heat_energy"
        return name, "kWh", _ENERGY_TO_KWH[unit]
    if kind == "power" and unit in _POWER_TO_W:
        name = "active_power" if device_type == ELECTRICITY else "thermal_power"
        return name, "W", _POWER_TO_W[unit]
    if kind == "volume_flow" and unit in _FLOW_TO_M3H:
        return "flow", "m3/h", _times(_FLOW_TO_M3H[unit])
    if kind in ("on_time", "operating_time") and unit in _SECONDS:
        return "operating_time", "s", _times(_SECONDS[unit])
    direct = _DIRECT.get(kind)
    if direct is not None and unit == direct[1]:
        return direct[0], direct[1], _same
    return None


_Plan = tuple[str, str, Convert | None] | None
_MEMO: dict[tuple, _Plan] = {}
_MEMO_LIMIT: Final = 4096   # distinct record headers x device types; a block has far fewer


def _plan_for(record: Record, device_type: int) -> _Plan:
    if record.storage or record.subunit or record.function != "instantaneous":
        return None
    if record.modifiers:
        return None
    suffix = f"_t{record.tariff}" if record.tariff else ""
    if record.kind in _TEXT:
        return _TEXT[record.kind] + suffix, "", None
    target = _target(record, device_type)
    if target is None:
        return None
    return target[0] + suffix, target[1], target[2]


def records_to_samples(records: list[Record], device_type: int) -> list[Sample]:
    """Current values (storage 0, instantaneous, subunit 0) as Samples; tariffs get `_tN`.

    Historic storages, min/max values and direction-qualified registers stay in the records
    (the CLI shows them) but are not readings: prepay charges from current registers only.
    The decision per record header is memoised: meters repeat their layout in every telegram.
    """
    samples: list[Sample] = []
    seen: set[str] = set()
    memo = _MEMO
    for record in records:
        key = (*record[:2], *record[3:8], device_type)   # the header, not value / raw / error
        if key in memo:
            plan = memo[key]
        else:
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            plan = memo[key] = _plan_for(record, device_type)
        if plan is None or plan[0] in seen:   # the first record of a quantity is the register
            continue
        quantity, unit, convert = plan
        value = _converted(record.value, convert)
        if value is None or isinstance(value, FrameError):
            continue    # invalid BCD, no value, out of range: no reading rather than a wrong one
        seen.add(quantity)
        samples.append(Sample(quantity, value, unit))
    return samples


def _converted(value: Decimal | str | None, convert: Convert | None
               ) -> Decimal | str | FrameError | None:
    """The sample value for a record value (None: not a reading); FrameError: out of range."""
    if convert is None:
        return value if isinstance(value, str) else None
    if not isinstance(value, Decimal):
        return None
    try:
        return convert(value)
    except (DecimalException, OutOfRange):
        return _conversion_error(value)


def _conversion_error(value: Decimal) -> FrameError:
    return FrameError(f"value {value!s:.40} out of range after unit conversion")


_LAYOUTS: dict[tuple[int, int], tuple[object, list[tuple[int, str, str, Convert | None]]]] = {}


def telegram_samples(records: list[Record], device_type: int, layout: object) -> list[Sample]:
    """Like records_to_samples, but reuses the selection made for the same record layout."""
    return telegram_readings(records, device_type, layout)[0]


def telegram_readings(records: list[Record], device_type: int, layout: object
                      ) -> tuple[list[Sample], list[FrameError]]:
    """The samples of a telegram and a FrameError per record whose value is out of range
    (in the record itself, or after the unit conversion): the caller counts them per meter."""
    cached = _LAYOUTS.get((id(layout), device_type))
    if cached is None or cached[0] is not layout:
        if len(_LAYOUTS) >= _MEMO_LIMIT:
            _LAYOUTS.clear()
        cached = (layout, _select(records, device_type))
        _LAYOUTS[(id(layout), device_type)] = cached    # holds `layout`, so its id stays unique
    samples = []
    errors = [FrameError(record.error) for record in records if record.error]
    for index, quantity, unit, convert in cached[1]:   # inlined _converted: the hot path
        value = records[index].value
        if convert is None:
            if isinstance(value, str):
                samples.append(Sample(quantity, value, unit))
        elif isinstance(value, Decimal):
            try:
                samples.append(Sample(quantity, convert(value), unit))
            except (DecimalException, OutOfRange):
                errors.append(_conversion_error(value))
    return samples, errors


def _select(records: list[Record], device_type: int) -> list[tuple[int, str, str, Convert | None]]:
    chosen = []
    seen: set[str] = set()
    for index, record in enumerate(records):
        plan = _plan_for(record, device_type)
        if plan is not None and plan[0] not in seen:
            seen.add(plan[0])
            chosen.append((index, *plan))
    return chosen


BILLING_SUFFIX: Final = "_billing"
BILLING_DATE: Final = "billing_date"


def billing_samples(records: list[Record], device_type: int, storage: int,
                    layout: object = None) -> list[Sample]:
    """The billing-period ("target") values: the records of `storage` (instantaneous,
    subunit 0, no tariff) as `<quantity>_billing` samples, with `billing_date`, the date or
    date-time record of that storage. Which storage is the billing one differs by make (the
    wM-Bus quirk says it); the current values stay records_to_samples'. With `layout` (the
    plan decode_plan returned), the selection is made once per layout."""
    key = (id(layout), device_type, storage)
    cached = _BILLING.get(key) if layout is not None else None
    if cached is None or cached[0] is not layout:
        cached = (layout, _billing_select(records, device_type, storage))
        if layout is not None:
            if len(_BILLING) >= _MEMO_LIMIT:
                _BILLING.clear()
            _BILLING[key] = cached
    samples = []
    for index, quantity, unit, convert in cached[1]:
        value = _converted(records[index].value, convert)
        if value is not None and not isinstance(value, FrameError):
            samples.append(Sample(quantity, value, unit))
    return samples


_BILLING: dict[tuple[int, int, int], tuple[object, list[tuple[int, str, str, Convert | None]]]] \
    = {}


def _billing_select(records: list[Record], device_type: int, storage: int
                    ) -> list[tuple[int, str, str, Convert | None]]:
    chosen: list[tuple[int, str, str, Convert | None]] = []
    seen: set[str] = set()
    for index, record in enumerate(records):
        if record.storage != storage or record.subunit or record.tariff:
            continue
        plan: tuple[str, str, Convert | None] | None = None
        if record.kind in ("date", "datetime"):
            plan = (BILLING_DATE, "", None)
        elif record.function == "instantaneous" and not record.modifiers:
            target = _target(record, device_type)
            if target is not None:
                plan = (target[0] + BILLING_SUFFIX, target[1], target[2])
        if plan is not None and plan[0] not in seen:
            seen.add(plan[0])
            chosen.append((index, *plan))
    return chosen


def _plain(value: Decimal) -> Decimal:
    """Drop exponent notation (5.2E+3 -> 5200) without changing the value."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        return value.quantize(Decimal(1), context=BOUNDED)
    return value
