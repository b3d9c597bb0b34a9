"""Wires the analytics into the readings' transaction: intervals (and what builds on them)
are computed from each committed group of readings and stored with them, outbox rows included.

Runs as one of the writer's in_transaction hooks (like prepay's charge), before the uplink's
hook so the batch built in that commit can carry them. A track is resumed from its newest
stored interval and the readings after it the first time a register is seen after a start.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from core.quantities import is_cumulative
from gateway.analytics.grid import Grid
from gateway.analytics.intervals import Anchors, Interval, RegisterTrack
from gateway.analytics.settings import AnalyticsSettings
from gateway.analytics.snapshots import Snapshot, SnapshotTrack
from storage import analytics as tables
from storage.records import ReadingSet
from storage.store import Store

LOGGER = logging.getLogger(__name__)

# How many of a meter's newest readings a snapshot track looks through for the one before the
# first it is given after a start (more than one commit's worth of one meter).
RESUME_LOOKBACK = 64


def interval_row(i: Interval, grid: str) -> tables.IntervalRow:
    flags = (*i.flags, "clock_jump") if i.clock_jump else i.flags
    return tables.IntervalRow(i.meter_id, i.quantity, grid, i.start_ms, i.end_ms, i.value,
                              i.quality, i.gap_ms, i.end_value, i.carried, flags)


class AnalyticsWiring:
    def __init__(self, settings: AnalyticsSettings, store: Store) -> None:
        store.register_outbox_kind(tables.INTERVAL_KIND, tables.INTERVAL_PRIORITY,
                                   tables.interval_bodies)
        store.register_outbox_kind(tables.SNAPSHOT_KIND, tables.SNAPSHOT_PRIORITY,
                                   tables.snapshot_bodies)
        self.settings = settings
        self._store = store
        self._grid = Grid(settings.grid, settings.timezone)
        self._tracks: dict[tuple[str, str], RegisterTrack] = {}
        self._snapshots: dict[tuple[str, str], SnapshotTrack] = {}
        self.intervals_stored = 0
        self.snapshots_stored = 0

    def on_readings(self, tx: Any, stored: list[ReadingSet]) -> None:
        """The writer's in_transaction hook: every interval the readings close, stored."""
        for reading in stored:
            if not self.settings.covers(reading.meter_id):
                continue
            for value in reading.values:
                if not isinstance(value.value, Decimal) or not is_cumulative(value.quantity):
                    continue
                track = self._track(tx, reading.meter_id, value.quantity, reading.ts_ms)
                for interval in track.add(reading.ts_ms, value.value):
                    self._store_interval(tx, interval)
                snaps = self._snapshot_track(reading.meter_id, value.quantity, reading.ts_ms)
                for snapshot in snaps.add(reading.ts_ms, value.value):
                    self._store_snapshot(tx, snapshot)

    def _store_snapshot(self, tx: Any, s: Snapshot) -> None:
        ref = tables.insert_snapshot(tx, tables.SnapshotRow(
            s.meter_id, s.quantity, s.kind, s.ts_ms, s.value, s.quality, s.gap_ms))
        if ref is not None:
            self._store.outbox_add(tx, tables.SNAPSHOT_KIND, ref, s.ts_ms)
            self.snapshots_stored += 1

    def _snapshot_track(self, meter_id: str, quantity: str, ts_ms: int) -> SnapshotTrack:
        key = (meter_id, quantity)
        track = self._snapshots.get(key)
        if track is None:
            s = self.settings
            track = SnapshotTrack.daily_and_billing(
                meter_id, quantity, s.timezone, s.billing_day, s.billing_hour,
                s.max_interpolate_s * 1000)
            # resumed from the newest reading before this one (the batch's own are stored)
            for before in self._store.last_readings(meter_id, RESUME_LOOKBACK):
                value = next((v.value for v in before.values if v.quantity == quantity), None)
                if before.ts_ms < ts_ms and isinstance(value, Decimal):
                    track.reading_ms, track.reading_value = before.ts_ms, value
                    break
            self._snapshots[key] = track
        return track

    def _store_interval(self, tx: Any, interval: Interval) -> None:
        ref = tables.insert_interval(tx, interval_row(interval, self._grid.kind))
        if ref is not None:
            self._store.outbox_add(tx, tables.INTERVAL_KIND, ref, interval.end_ms)
            self.intervals_stored += 1

    def _track(self, tx: Any, meter_id: str, quantity: str, ts_ms: int) -> RegisterTrack:
        key = (meter_id, quantity)
        track = self._tracks.get(key)
        if track is None:
            s = self.settings
            track = RegisterTrack(meter_id, quantity, self._grid, s.measured_gap_s * 1000,
                                  s.max_interpolate_s * 1000)
            anchors = self._resume(tx, meter_id, quantity, ts_ms)
            if anchors is not None:
                track.resume(anchors)
            self._tracks[key] = track
        return track

    def _resume(self, tx: Any, meter_id: str, quantity: str, ts_ms: int) -> Anchors | None:
        last = tables.last_interval(tx, meter_id, quantity, self._grid.kind)
        if last is None or last.end_value is None or last.end_ms > ts_ms:
            return None
        anchors = Anchors(last.end_ms, last.end_value, last.end_ms, last.end_value,
                          last.end_value)
        for reading in self._store.readings_between(meter_id, last.end_ms + 1, ts_ms):
            value = next((v.value for v in reading.values if v.quantity == quantity), None)
            if isinstance(value, Decimal):
                anchors.span_gap_ms = max(anchors.span_gap_ms, reading.ts_ms - anchors.reading_ms)
                anchors.reading_ms, anchors.reading_value = reading.ts_ms, value
        LOGGER.debug("analytics_track_resumed", extra={"meter": meter_id, "quantity": quantity,
                                                       "from_ms": last.end_ms})
        return anchors
