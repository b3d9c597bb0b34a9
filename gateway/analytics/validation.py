"""Validation at the edge (VEE-style): each rule flags a reading or an interval, never drops it.

Reading rules: `limits` (a value outside its configured band), `backwards` (a cumulative
register below its previous value), `unit` (the unit is not the quantity's canonical one, or the
quantity does not belong to the meter's commodity), `clock_unsynced` (stamped while the gateway
clock was not synchronised). Interval rules: `interval_limits`, `spike` (above N x the median
of the recent history), `week_ratio` (against the same interval a week before, either way),
`stddev` (beyond k standard deviations of the recent history), `relay_open` (consumption while
prepay holds the supply open), `clock_unsynced` (a reading in it was). Pure: the wiring hands
in the history, last week's value and the relay state as plain data.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from functools import cache
from typing import Final, Protocol

from core.quantities import QUANTITIES, base_name, is_cumulative

READING_RULES: Final = ("limits", "backwards", "unit", "clock_unsynced")
INTERVAL_RULES: Final = ("interval_limits", "spike", "week_ratio", "stddev", "relay_open",
                         "clock_unsynced")

# quantities by commodity: what a meter of that kind may report (housekeeping for all)
_HOUSEKEEPING = {"meter_datetime", "serial_number", "error_flags", "operating_time"}
_WATER = {"volume", "flow", "flow_temperature", "return_temperature", "external_temperature"}
_HEAT = {"volume", "flow", "heat_energy", "cooling_energy", "thermal_power", "flow_temperature",
         "return_temperature", "temperature_difference", "external_temperature",
         "heat_cost_allocator"}
COMMODITY_QUANTITIES: Final[dict[str, frozenset[str]]] = {
    "water": frozenset(_WATER | _HOUSEKEEPING),
    "heat": frozenset(_HEAT | _HOUSEKEEPING),
    "electricity": frozenset(set(QUANTITIES) - _HEAT - _WATER | _HOUSEKEEPING),
}


class Value(Protocol):
    """One value of a reading (storage.records.StoredValue has these)."""

    @property
    def quantity(self) -> str: ...
    @property
    def value(self) -> Decimal | str: ...
    @property
    def unit(self) -> str: ...


class RelayStates(Protocol):
    """What validation needs of prepay: is the meter's supply relay open (None: no relay)."""

    def is_open(self, meter_id: str) -> bool | None: ...


@dataclass(frozen=True, slots=True)
class Rules:
    """The rules of one meter (merged from the default, its groups and its own table)."""

    limits: Mapping[str, tuple[Decimal | None, Decimal | None]] = field(default_factory=dict)
    interval_min: Decimal | None = None
    interval_max: Decimal | None = None
    backwards: bool = True
    unit: bool = True
    clock_unsynced: bool = True
    spike_factor: Decimal | None = None
    week_ratio: Decimal | None = None
    stddev_k: Decimal | None = None
    history: int = 96  # intervals kept for spike and stddev
    min_history: int = 8  # no spike / stddev verdict on fewer
    relay_open_tolerance: Decimal = Decimal(0)


Flag = tuple[str, str]  # rule, detail


def check_reading(rules: Rules, commodity: str, values: Sequence[Value],
                  previous: Mapping[str, Decimal], unsynced: bool) -> list[Flag]:
    """Flags of one reading; `previous` holds the registers' previous values."""
    flags: list[Flag] = []
    for v in values:
        quantity, value, unit = v.quantity, v.value, v.unit
        if not isinstance(value, Decimal):
            continue
        band = rules.limits.get(quantity)
        if band is not None and not within(value, band):
            flags.append(("limits", f"{quantity}={value}"))
        before = previous.get(quantity)
        if rules.backwards and before is not None and is_cumulative(quantity) and value < before:
            flags.append(("backwards", f"{quantity} {before} -> {value}"))
        if rules.unit and not unit_fits(commodity, quantity, unit):
            flags.append(("unit", f"{quantity} in {unit!r} on a {commodity} meter"))
    if rules.clock_unsynced and unsynced:
        flags.append(("clock_unsynced", ""))
    return _first_per_rule(flags) if flags else flags


def within(value: Decimal, band: tuple[Decimal | None, Decimal | None]) -> bool:
    low, high = band
    return (low is None or value >= low) and (high is None or value <= high)


@cache  # every value of every reading: the combinations are few
def unit_fits(commodity: str, quantity: str, unit: str) -> bool:
    base = base_name(quantity)
    canonical = QUANTITIES.get(base)
    allowed = COMMODITY_QUANTITIES.get(commodity)
    return canonical is not None and unit == canonical and (allowed is None or base in allowed)


def _first_per_rule(flags: list[Flag]) -> list[Flag]:
    seen: dict[str, str] = {}
    for rule, detail in flags:
        seen.setdefault(rule, detail)
    return list(seen.items())


@dataclass(slots=True)
class IntervalContext:
    """What an interval is judged against: recent history, the week before, relay, clock."""

    history: deque[Decimal]
    last_week: Decimal | None = None
    relay_open: bool | None = None
    unsynced: bool = False


def check_interval(rules: Rules, value: Decimal | None, ctx: IntervalContext) -> list[Flag]:
    """Flags of one interval's consumption (a missing interval has none but the clock's)."""
    flags: list[Flag] = []
    if value is not None:
        if not within(value, (rules.interval_min, rules.interval_max)):
            flags.append(("interval_limits", str(value)))
        flags.extend(_history_flags(rules, value, ctx.history))
        if (rules.week_ratio is not None and ctx.last_week is not None
                and off_ratio(value, ctx.last_week, rules.week_ratio)):
            flags.append(("week_ratio", f"{value} vs {ctx.last_week}"))
        if ctx.relay_open and value > rules.relay_open_tolerance:
            flags.append(("relay_open", str(value)))
    if rules.clock_unsynced and ctx.unsynced:
        flags.append(("clock_unsynced", ""))
    return flags


def _history_flags(rules: Rules, value: Decimal, history: Sequence[Decimal]) -> list[Flag]:
    if len(history) < rules.min_history:
        return []
    flags: list[Flag] = []
    if rules.spike_factor is not None:
        med = median(history)
        if med > 0 and value > rules.spike_factor * med:
            flags.append(("spike", f"{value} > {rules.spike_factor} x median {med}"))
    if rules.stddev_k is not None:
        mean, sd = mean_stddev(history)
        if sd > 0 and abs(value - mean) > rules.stddev_k * sd:
            flags.append(("stddev", f"{value} vs mean {mean} sd {sd}"))
    return flags


def off_ratio(value: Decimal, before: Decimal, ratio: Decimal) -> bool:
    """Above `ratio` times the week before, or below it divided by `ratio` (zero: never off
    when both are zero, always when only one is)."""
    if before <= 0:
        return value > 0 and before == 0
    return value > ratio * before or value * ratio < before


def median(values: Sequence[Decimal]) -> Decimal:
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def mean_stddev(values: Sequence[Decimal]) -> tuple[Decimal, Decimal]:
    """The mean and the population standard deviation, exact to 28 digits."""
    with localcontext() as ctx:
        ctx.prec = 28
        n = Decimal(len(values))
        mean = sum(values, Decimal(0)) / n
        variance = sum(((v - mean) ** 2 for v in values), Decimal(0)) / n
        return +mean, variance.sqrt()
