"""Exact interval consumption of cumulative registers, from register deltas (never from power).

One `RegisterTrack` per (meter, register) follows the readings in arrival order. The value at a
grid boundary is the reading that falls on it, else the straight line between the readings on
either side, quantized to `RESOLUTION` (1e-6 of the register unit): every interval is the
difference of two boundary values, so the intervals between two boundaries sum exactly to the
difference of the values there, and to the register difference when readings fall on both.

Quality per interval: `measured` when no gap between the readings that bound it exceeds
`measured_gap_ms`; `interpolated` (with `gap_ms`, the longest gap) up to `max_interpolate_ms`;
beyond that `missing`: no value, and the last missing interval of a run holds the run's energy in
`carried` (consumed then, not attributed to any interval). A reading stamped at or before the
previous one (the clock went back) moves the register on without moving time: its energy lands
in the next interval, flagged `clock_jump`. Decimal only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Final

from gateway.analytics.grid import Grid

RESOLUTION: Final = Decimal("0.000001")
QUALITIES: Final = ("measured", "interpolated", "missing")


@dataclass(frozen=True, slots=True)
class Interval:
    """One grid interval of one register: start <= t < end."""

    meter_id: str
    quantity: str
    start_ms: int
    end_ms: int
    value: Decimal | None  # None when missing
    quality: str
    gap_ms: int = 0
    end_value: Decimal | None = None  # the register at end_ms (None when missing)
    carried: Decimal | None = None
    clock_jump: bool = False
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Boundary:
    """The register at one boundary; `value` None when it falls in a gap too long to bridge."""

    ts_ms: int
    value: Decimal | None
    gap_ms: int  # the gap between the readings on either side of it, or up to it
    on_reading: bool  # a reading falls on it


def quantize(value: Decimal) -> Decimal:
    return value.quantize(RESOLUTION, rounding=ROUND_HALF_EVEN)


def interpolate(t0: int, v0: Decimal, t1: int, v1: Decimal, at: int) -> Decimal:
    """The straight line through (t0, v0) and (t1, v1) at `at`, quantized (t0 < at <= t1)."""
    if at == t1:
        return quantize(v1)
    with localcontext() as ctx:
        ctx.prec = 50
        return quantize(v0 + (v1 - v0) * (at - t0) / (t1 - t0))


@dataclass(slots=True)
class Anchors:
    """Where a track stands: the newest reading and the newest boundary it has passed."""

    reading_ms: int
    reading_value: Decimal
    boundary_ms: int | None = None
    boundary_value: Decimal | None = None  # None: the interval from boundary_ms is missing
    known_value: Decimal | None = None  # the last known boundary value (a missing run's start)
    span_gap_ms: int = 0  # longest reading gap since boundary_ms
    jumped: bool = False
    next_ms: int | None = None  # the first boundary after reading_ms, once computed


@dataclass(slots=True)
class RegisterTrack:
    """The boundary values and intervals of one register of one meter, reading by reading."""

    meter_id: str
    quantity: str
    grid: Grid
    measured_gap_ms: int
    max_interpolate_ms: int
    at: Anchors | None = None
    pending: list[Interval] = field(default_factory=list)

    def resume(self, anchors: Anchors) -> None:
        self.at = anchors

    def add(self, ts_ms: int, value: Decimal) -> list[Interval]:
        """Take one reading; returns the intervals it closes (oldest first)."""
        at = self.at
        if at is None:
            value = quantize(value)
            on = self.grid.is_boundary(ts_ms)
            self.at = Anchors(ts_ms, value, ts_ms if on else None, value if on else None,
                              value if on else None)
            return []
        if ts_ms <= at.reading_ms:
            at.reading_value, at.jumped = value, True
            return []
        gap = ts_ms - at.reading_ms
        if at.next_ms is None:
            at.next_ms = self.grid.next_after(at.reading_ms)
        if ts_ms < at.next_ms:  # no boundary crossed: most readings, no grid arithmetic
            at.span_gap_ms = max(at.span_gap_ms, gap)
            at.reading_ms, at.reading_value = ts_ms, value
            return []
        at.next_ms = None
        before = at.boundary_ms
        out = [self._close(b) for b in self._boundaries(at, ts_ms, value)]
        if at.boundary_ms == before:  # no boundary passed: the gap belongs to the open interval
            at.span_gap_ms = max(at.span_gap_ms, gap)
        at.reading_ms, at.reading_value = ts_ms, value
        return [i for i in out if i is not None]

    def _boundaries(self, at: Anchors, ts_ms: int, value: Decimal) -> Iterator[Boundary]:
        gap = ts_ms - at.reading_ms
        for b in self.grid.between(at.reading_ms, ts_ms):
            if gap > self.max_interpolate_ms and b != ts_ms:
                yield Boundary(b, None, gap, False)
            else:
                v = interpolate(at.reading_ms, at.reading_value, ts_ms, value, b)
                yield Boundary(b, v, gap, b == ts_ms)

    def _close(self, b: Boundary) -> Interval | None:
        at = self.at
        assert at is not None
        start, start_value = at.boundary_ms, at.boundary_value
        gap = max(at.span_gap_ms, b.gap_ms)
        jumped = at.jumped
        at.boundary_ms, at.boundary_value, at.jumped = b.ts_ms, b.value, False
        at.span_gap_ms = 0 if b.on_reading else b.gap_ms
        if start is None:
            if b.value is not None:
                at.known_value = b.value
            return None
        if start_value is None or b.value is None:
            carried = None
            if b.value is not None and at.known_value is not None:
                carried = b.value - at.known_value
            if b.value is not None:
                at.known_value = b.value
            return Interval(self.meter_id, self.quantity, start, b.ts_ms, None, "missing", gap,
                            None, carried, jumped)
        at.known_value = b.value
        quality = "measured" if gap <= self.measured_gap_ms else "interpolated"
        return Interval(self.meter_id, self.quantity, start, b.ts_ms, b.value - start_value,
                        quality, gap if quality == "interpolated" else 0, b.value, None, jumped)
