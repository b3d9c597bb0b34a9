"""Plausible, deterministic electrical values for simulated meters (seed + time -> quantities)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

# Simulated time starts here (2026-01-01T00:00:00Z) so energy totals stay in a realistic range.
TIME_ORIGIN_S: Final[float] = 1_767_225_600.0
LOAD_PERIOD_S: Final[float] = 3600.0  # one load cycle per hour: tests see it move within minutes
NOMINAL_V: Final[float] = 230.0
NOMINAL_HZ: Final[float] = 50.0
NOISE_TICK_S: Final[float] = 0.1  # noise changes at most ten times a second
_BASE: Final[float] = 0.55  # load swings between 10 % and 100 % of the peak current
_SWING: Final[float] = 0.45
_PHASES: Final[tuple[str, ...]] = ("l1", "l2", "l3")


@dataclass(frozen=True, slots=True)
class LoadModel:
    """One meter's load: peak current per phase, power factor, phase offsets, starting energy."""

    seed: int
    peak_current_a: float
    power_factor: float
    offsets: tuple[float, float, float]
    import_start_kwh: float
    export_kwh: float

    @classmethod
    def from_seed(cls, seed: int, peak_current_a: float | None = None) -> LoadModel:
        rng = random.Random(seed)
        return cls(
            seed=seed,
            peak_current_a=peak_current_a if peak_current_a is not None else rng.uniform(5, 40),
            power_factor=rng.uniform(0.85, 0.99),
            offsets=(rng.uniform(0, 6.28), rng.uniform(0, 6.28), rng.uniform(0, 6.28)),
            import_start_kwh=rng.uniform(100, 5000),
            export_kwh=rng.uniform(0, 50),
        )

    def _current(self, phase: int, t: float) -> float:
        angle = 2 * math.pi * t / LOAD_PERIOD_S + self.offsets[phase]
        return self.peak_current_a * (_BASE + _SWING * math.sin(angle))

    def _charge_as(self, phase: int, t: float) -> float:
        """Closed-form integral of the phase current from 0 to t (ampere-seconds)."""
        w = 2 * math.pi / LOAD_PERIOD_S
        off = self.offsets[phase]
        swing = _SWING / w * (math.cos(w * t + off) - math.cos(off))
        return self.peak_current_a * (_BASE * t - swing)

    def import_kwh(self, t: float) -> float:
        """Monotonic: the integrand (a current at nominal V and fixed PF) is never negative."""
        watt_seconds = sum(self._charge_as(p, t) for p in range(3)) * NOMINAL_V * self.power_factor
        return self.import_start_kwh + watt_seconds / 3_600_000

    def values(self, now: float, single_phase: bool = False) -> dict[str, float]:
        """Every quantity a profile may ask for, at wall-clock time `now`."""
        t = now - TIME_ORIGIN_S
        rng = random.Random(self.seed * 1_000_003 + int(now / NOISE_TICK_S))
        out: dict[str, float] = {"frequency": NOMINAL_HZ + rng.uniform(-0.05, 0.05)}
        sin_phi = math.sqrt(1 - self.power_factor**2)
        totals = {"active_power": 0.0, "reactive_power": 0.0, "apparent_power": 0.0}
        for index, name in enumerate(_PHASES[:1] if single_phase else _PHASES):
            volts = NOMINAL_V + rng.uniform(-2.0, 2.0)
            amps = self._current(index, t) + rng.uniform(-0.05, 0.05)
            phase = {
                "voltage": volts, "current": amps, "power_factor": self.power_factor,
                "active_power": volts * amps * self.power_factor,
                "reactive_power": volts * amps * sin_phi, "apparent_power": volts * amps,
            }
            for key, value in phase.items():
                out[f"{key}_{name}"] = value
            for key in totals:
                totals[key] += phase[key]
        out.update(totals)
        out["power_factor"] = self.power_factor
        for key in ("voltage", "current"):
            out[key] = out[f"{key}_l1"]
        imported = self.import_kwh(t) if not single_phase else self.import_kwh(t) / 3
        out["import_active_energy"] = imported
        out["export_active_energy"] = self.export_kwh
        out["import_reactive_energy"] = imported * sin_phi / self.power_factor
        out["export_reactive_energy"] = self.export_kwh / 10
        out["total_active_energy"] = imported + self.export_kwh
        out["total_reactive_energy"] = out["import_reactive_energy"] + out["export_reactive_energy"]
        return out


def to_decimal(value: float) -> Decimal:
    """A float model value as a Decimal (exact binary value; encode rounds it to the register)."""
    return Decimal(repr(value))
