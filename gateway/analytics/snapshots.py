"""Billing snapshots: a register's value at each local midnight (the daily transfer) and at the
billing instant (day and hour of the month, local), from the readings around that instant.

A reading that falls on the instant is the value (`measured`); otherwise the straight line
between the readings on either side (`interpolated`, with the gap between them); across a gap
longer than `max_interpolate_ms` the snapshot is `missing` (no value). Decimal only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from gateway.analytics.grid import Grid, local_date, local_instant_ms
from gateway.analytics.intervals import interpolate, quantize


class Instants(Protocol):
    def next_after(self, t_ms: int) -> int: ...


class BillingInstants:
    """`hour`:00 local on `day` of every month."""

    def __init__(self, zone: str, day: int, hour: int) -> None:
        self.zone = ZoneInfo(zone)
        self.day = day
        self.hour = hour

    def next_after(self, t_ms: int) -> int:
        month = local_date(self.zone, t_ms).replace(day=1)
        while True:
            at = local_instant_ms(self.zone, month.replace(day=self.day), self.hour)
            if at > t_ms:
                return at
            month = (month + dt.timedelta(days=32)).replace(day=1)


@dataclass(frozen=True, slots=True)
class Snapshot:
    meter_id: str
    quantity: str
    kind: str  # daily | billing
    ts_ms: int
    value: Decimal | None
    quality: str  # measured | interpolated | missing
    gap_ms: int = 0


@dataclass(slots=True)
class SnapshotTrack:
    """The snapshots of one register of one meter, reading by reading (arrival order)."""

    meter_id: str
    quantity: str
    instants: dict[str, Instants]
    max_interpolate_ms: int
    reading_ms: int | None = None
    reading_value: Decimal = Decimal(0)
    _next: dict[str, int] = field(default_factory=dict)  # kind -> first instant > reading_ms
    _soonest: int = -1  # the nearest of them (-1: not known yet)

    @classmethod
    def daily_and_billing(cls, meter_id: str, quantity: str, zone: str, day: int, hour: int,
                          max_interpolate_ms: int) -> SnapshotTrack:
        return cls(meter_id, quantity, {"daily": Grid("daily", zone),
                                        "billing": BillingInstants(zone, day, hour)},
                   max_interpolate_ms)

    def add(self, ts_ms: int, value: Decimal) -> list[Snapshot]:
        """Take one reading; returns the snapshots whose instant it passes (by time)."""
        if self.reading_ms is not None and self.reading_ms < ts_ms < self._soonest:
            self.reading_ms, self.reading_value = ts_ms, value  # most readings: nothing due
            return []
        value = quantize(value)
        out: list[Snapshot] = []
        if self.reading_ms is None:
            for kind, instants in self.instants.items():
                if instants.next_after(ts_ms - 1) == ts_ms:
                    out.append(Snapshot(self.meter_id, self.quantity, kind, ts_ms, value,
                                        "measured"))
        elif ts_ms > self.reading_ms:
            for kind, instants in self.instants.items():
                at = self._next.get(kind)
                if at is None:
                    at = instants.next_after(self.reading_ms)
                while at <= ts_ms:
                    out.append(self._at(kind, at, ts_ms, value))
                    at = instants.next_after(at)
                self._next[kind] = at  # computed once per instant, not once per reading
            self._soonest = min(self._next.values())
        if self.reading_ms is None or ts_ms > self.reading_ms:
            self.reading_ms = ts_ms
        self.reading_value = value  # a clock that went back moves the register, not the time
        if len(out) > 1:
            out.sort(key=lambda s: (s.ts_ms, s.kind))
        return out

    def _at(self, kind: str, at: int, ts_ms: int, value: Decimal) -> Snapshot:
        assert self.reading_ms is not None
        gap = ts_ms - self.reading_ms
        if at == ts_ms:
            return Snapshot(self.meter_id, self.quantity, kind, at, value, "measured")
        if gap > self.max_interpolate_ms:
            return Snapshot(self.meter_id, self.quantity, kind, at, None, "missing", gap)
        v = interpolate(self.reading_ms, self.reading_value, ts_ms, value, at)
        return Snapshot(self.meter_id, self.quantity, kind, at, v, "interpolated", gap)
