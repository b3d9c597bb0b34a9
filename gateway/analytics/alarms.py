"""Alarms as events raised once and cleared once, with thresholds as data.

`AlarmBook` holds which alarms are active (the wiring persists them, so a restart neither
raises an active one again nor forgets to clear it); each check below says whether one
condition holds now, and the book turns a change into one `AlarmChange`. Conditions:
`balance_loss` (gateway/analytics/balance.py), `max_demand` (block or sliding 15-minute demand
above the contracted power), `reactive_ratio` (a day's cos phi below the limit), `voltage_band`
(a phase outside the band for longer than T), `phase_loss`, `current_imbalance`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any, Final

PHASES: Final = ("l1", "l2", "l3")
SEVERITIES: Final[dict[str, str]] = {
    "balance_loss": "warning", "max_demand": "warning", "reactive_ratio": "warning",
    "voltage_band": "warning", "phase_loss": "error", "current_imbalance": "warning",
}


@dataclass(frozen=True, slots=True)
class AlarmChange:
    """One alarm raised or cleared: becomes an `alarm_raised` / `alarm_cleared` event."""

    alarm: str
    subject: str  # a meter id or a balance node
    raised: bool
    severity: str
    ts_ms: int
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.alarm}:{self.subject}"


class AlarmBook:
    """Active alarms by key; `update` returns a change only when the state flips."""

    def __init__(self, active: Mapping[str, int] | None = None) -> None:
        self.active: dict[str, int] = dict(active or {})  # key -> raised at ms

    def update(self, alarm: str, subject: str, holds: bool, ts_ms: int,
               data: Mapping[str, Any] | None = None) -> AlarmChange | None:
        key = f"{alarm}:{subject}"
        if holds == (key in self.active):
            return None
        if holds:
            self.active[key] = ts_ms
        else:
            del self.active[key]
        return AlarmChange(alarm, subject, holds, SEVERITIES.get(alarm, "warning"), ts_ms,
                           dict(data or {}))


@dataclass(frozen=True, slots=True)
class AlarmLimits:
    """A meter's alarm thresholds; None switches that alarm off."""

    contracted_power_w: Decimal | None = None
    demand: str = "block"  # block: each 15 min interval; sliding: the last 15 min, per interval
    cos_phi_min: Decimal | None = None
    reactive_period: str = "day"  # day | month: the period whose cos phi is judged
    voltage_low: Decimal | None = None
    voltage_high: Decimal | None = None
    voltage_for_s: int = 60
    phase_loss_v: Decimal | None = None
    imbalance_percent: Decimal | None = None

    @property
    def on_readings(self) -> bool:
        """Whether any alarm judged on each reading (voltage, phases, currents) is on."""
        return any(x is not None for x in (self.voltage_low, self.voltage_high,
                                            self.phase_loss_v, self.imbalance_percent))


def demand_w(energy_kwh: Decimal, seconds: int) -> Decimal:
    """The mean power over `seconds` of `energy_kwh`, in W."""
    return energy_kwh * 3_600_000 / seconds


@dataclass(slots=True)
class DemandWindow:
    """The mean power of a 15-minute window of intervals (each `seconds` long): `block`
    windows follow each other (a figure every 15 minutes), `sliding` ones move by one interval
    (a figure every interval). On the 15-minute grid both are each interval's own mean power;
    on a coarser grid the window is one interval."""

    window_s: int = 900
    sliding: bool = False
    parts: deque[tuple[int, Decimal]] = field(default_factory=deque)  # (seconds, kWh)

    def add(self, seconds: int, kwh: Decimal) -> Decimal | None:
        self.parts.append((seconds, kwh))
        while sum(s for s, _ in self.parts) > self.window_s:
            self.parts.popleft()
        covered = sum(s for s, _ in self.parts)
        if covered < self.window_s:
            return None
        demand = demand_w(sum((k for _, k in self.parts), Decimal(0)), covered)
        if not self.sliding:
            self.parts.clear()  # the next block starts empty
        return demand


def cos_phi(active_kwh: Decimal, reactive_kvarh: Decimal) -> Decimal | None:
    """cos phi = P / sqrt(P^2 + Q^2) of a period's energies (None without any energy)."""
    with localcontext() as ctx:
        ctx.prec = 28
        apparent = (active_kwh ** 2 + reactive_kvarh ** 2).sqrt()
        return None if apparent == 0 else active_kwh / apparent


def voltage_outside(limits: AlarmLimits, voltages: Mapping[str, Decimal]) -> list[str]:
    """The phases outside the band now."""
    return [p for p, v in voltages.items()
            if (limits.voltage_low is not None and v < limits.voltage_low)
            or (limits.voltage_high is not None and v > limits.voltage_high)]


def phases_lost(limits: AlarmLimits, voltages: Mapping[str, Decimal]) -> list[str]:
    """Phases below the phase-loss voltage while another phase is above it."""
    if limits.phase_loss_v is None or len(voltages) < 2:
        return []
    low = [p for p, v in voltages.items() if v < limits.phase_loss_v]
    return low if len(low) < len(voltages) else []


def imbalance_percent(currents: Sequence[Decimal]) -> Decimal | None:
    """(max - min) / mean of the phase currents, in percent (None when no current flows)."""
    if len(currents) < 2:
        return None
    mean = sum(currents, Decimal(0)) / len(currents)
    if mean <= 0:
        return None
    return (max(currents) - min(currents)) * 100 / mean


@dataclass(slots=True)
class Persisting:
    """A condition that must hold for `for_ms` before it counts (voltage out of band)."""

    since_ms: int | None = None

    def holds(self, now: bool, ts_ms: int, for_ms: int) -> bool:
        if not now:
            self.since_ms = None
            return False
        if self.since_ms is None:
            self.since_ms = ts_ms
        return ts_ms - self.since_ms >= for_ms
