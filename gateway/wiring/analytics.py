"""Wires the analytics into the readings' transaction: flags, intervals and snapshots are
computed from each committed group of readings and stored with them, outbox rows included.

Runs as one of the writer's in_transaction hooks (like prepay's charge), after prepay's (the
relay state it saves in that transaction is the one validation sees) and before the uplink's
(the batch built in that commit carries the results). What a register's tracks need after a
start (the boundary they stand on, the reading before, the recent history) is read from the
store the first time the register is seen.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from core.quantities import is_cumulative
from gateway.analytics.grid import STEPS_MS, Grid, week_before
from gateway.analytics.intervals import Anchors, Interval, RegisterTrack
from gateway.analytics.settings import AnalyticsSettings
from gateway.analytics.snapshots import Snapshot, SnapshotTrack
from gateway.analytics.validation import IntervalContext, RelayStates, check_interval, check_reading
from gateway.wiring.analytics_alarms import AnalyticsAlarms
from storage import analytics as tables
from storage import ledger
from storage.records import FLAG_CLOCK_UNSYNCED, FLAG_METER_RECORD, ReadingSet
from storage.store import Store
from uplink.records import register_record_encoder

LOGGER = logging.getLogger(__name__)

# How many of a meter's newest readings are looked through for the one before the first it is
# given after a start (more than one commit's worth of one meter).
RESUME_LOOKBACK = 64
# Old delivered analytics rows are pruned at most this often (in reading time), a bounded
# number per table each time: a grid step's worth of rows, never a day's in one commit.
PRUNE_EVERY_MS = 900_000
PRUNE_ROWS = 5000
DAY_MS = 86_400_000
# Flag bit 1 marks a value the meter recorded for a past instant and hands over later (a
# load-profile interval, a billing closure: FLAG_METER_RECORD of storage/records.py, coming with
# the meter records). The tracks follow the readings taken now: such a set would move a register
# back in time, so it is left out (the meter's own profile replacing the derived intervals is
# not done: docs/analytics.md).


class StoredRelayStates:
    """Prepay's relay state as validation's port: the state prepay persists (storage/ledger.py),
    read in the same transaction, so no prepay internals are imported."""

    def __init__(self, tx: Any) -> None:
        self._tx = tx
        self._seen: dict[str, bool | None] = {}  # one look-up per meter and transaction

    def is_open(self, meter_id: str) -> bool | None:
        if meter_id not in self._seen:
            state = ledger.relay_state(self._tx, meter_id)
            closed = None if state is None else state.get("closed")
            self._seen[meter_id] = None if closed is None else not closed
        return self._seen[meter_id]


@dataclass(slots=True)
class Register:
    """One register of one meter: its interval and snapshot tracks, history, clock bit."""

    intervals: RegisterTrack
    snapshots: SnapshotTrack
    history: deque[Decimal]
    unsynced: bool = False


@dataclass(slots=True)
class Counts:
    intervals: int = 0
    snapshots: int = 0
    flags: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)


def flat_fields(body: Any) -> dict[str, Any]:
    """The wire fields of an analytics record: its body's fields as they are (the record's
    time goes as its `t`), so the head-end finds the meter in `m`."""
    return {k: v for k, v in dict(body).items() if k != "ts_ms"}


def interval_row(i: Interval, grid: str, flags: tuple[str, ...]) -> tables.IntervalRow:
    flags = (*flags, "clock_jump") if i.clock_jump else flags
    return tables.IntervalRow(i.meter_id, i.quantity, grid, i.start_ms, i.end_ms, i.value,
                              i.quality, i.gap_ms, i.end_value, i.carried, flags)


class AnalyticsWiring:
    def __init__(self, settings: AnalyticsSettings, store: Store) -> None:
        for kind, priority, loader in (
                (tables.INTERVAL_KIND, tables.INTERVAL_PRIORITY, tables.interval_bodies),
                (tables.SNAPSHOT_KIND, tables.SNAPSHOT_PRIORITY, tables.snapshot_bodies),
                (tables.FLAG_KIND, tables.FLAG_PRIORITY, tables.flag_bodies)):
            store.register_outbox_kind(kind, priority, loader)
            register_record_encoder(kind, flat_fields)
        self.settings = settings
        self._store = store
        self._grid = Grid(settings.grid, settings.timezone)
        self._commodities = settings.commodities
        self._registers: dict[tuple[str, str], Register] = {}
        self._previous: dict[str, dict[str, Decimal]] = {}
        # filled once from the recent stored intervals, taken by each register when first seen
        self._resumable: dict[tuple[str, str], tuple[int, Decimal | None, deque[Decimal]]] | None
        self._resumable = None
        self._last_week: tuple[int, dict[tuple[str, str], Decimal]] = (-1, {})
        self._pruned_ms = 0
        self.counts = Counts()
        self.alarms = AnalyticsAlarms(settings, store, self._grid)

    def on_readings(self, tx: Any, stored: list[ReadingSet]) -> None:
        """The writer's in_transaction hook: every flag, interval and snapshot of the readings."""
        relays = StoredRelayStates(tx)
        if self._resumable is None and stored:
            self._resumable = self._load_recent(tx, min(r.ts_ms for r in stored))
        newest = max((r.ts_ms for r in stored), default=0)
        self._pruned_ms = min(self._pruned_ms, newest)  # the clock went back: start over
        synced = not any(r.flags & FLAG_CLOCK_UNSYNCED for r in stored)  # never by a wild clock
        if synced and newest - self._pruned_ms >= PRUNE_EVERY_MS:
            new_day = newest // DAY_MS != self._pruned_ms // DAY_MS
            self._pruned_ms = newest
            tables.prune(tx, newest - self.settings.keep_days * DAY_MS, PRUNE_ROWS,
                         intervals_only=not new_day)
        for reading in stored:
            if self.settings.covers(reading.meter_id) and not reading.flags & FLAG_METER_RECORD:
                self._validate(tx, reading)
                self._registers_of(tx, reading, relays)
                self.alarms.on_reading(tx, reading)

    def _validate(self, tx: Any, reading: ReadingSet) -> None:
        flags = check_reading(self.settings.rules_of(reading.meter_id),
                              self._commodities.get(reading.meter_id, ""), reading.values,
                              self._previous_of(reading), bool(reading.flags & FLAG_CLOCK_UNSYNCED))
        for rule, detail in flags:
            assert reading.id is not None
            ref = tables.insert_reading_flag(tx, reading.id, reading.meter_id, reading.ts_ms,
                                             rule, detail)
            self._store.outbox_add(tx, tables.FLAG_KIND, ref, reading.ts_ms)
            self.counts.flags += 1
            self.counts.by_rule[rule] = self.counts.by_rule.get(rule, 0) + 1

    def _previous_of(self, reading: ReadingSet) -> dict[str, Decimal]:
        previous = self._previous.get(reading.meter_id)
        if previous is None:
            previous = {}
            for before in self._store.last_readings(reading.meter_id, RESUME_LOOKBACK):
                if before.ts_ms < reading.ts_ms and not before.flags & FLAG_METER_RECORD:
                    previous = {v.quantity: v.value for v in before.values
                                if isinstance(v.value, Decimal)}
                    break
            self._previous[reading.meter_id] = previous
        return previous

    def _registers_of(self, tx: Any, reading: ReadingSet, relays: RelayStates) -> None:
        unsynced = bool(reading.flags & FLAG_CLOCK_UNSYNCED)
        previous = self._previous_of(reading)
        for value in reading.values:
            if not isinstance(value.value, Decimal) or not is_cumulative(value.quantity):
                continue
            previous[value.quantity] = value.value  # what the next reading is checked against
            reg = self._register(tx, reading.meter_id, value.quantity, reading.ts_ms)
            reg.unsynced = reg.unsynced or unsynced
            for interval in reg.intervals.add(reading.ts_ms, value.value):
                self._store_interval(tx, reg, interval, relays)
            reg.unsynced = unsynced  # this reading also opens the next interval
            for snapshot in reg.snapshots.add(reading.ts_ms, value.value):
                self._store_snapshot(tx, snapshot)

    def _store_interval(self, tx: Any, reg: Register, i: Interval, relays: RelayStates) -> None:
        rules = self.settings.rules_of(i.meter_id)
        last_week = None
        if rules.week_ratio is not None:
            last_week = self._week_before(tx, i.end_ms).get((i.meter_id, i.quantity))
        ctx = IntervalContext(reg.history, last_week, relays.is_open(i.meter_id), reg.unsynced)
        flags = tuple(rule for rule, _ in check_interval(rules, i.value, ctx))
        if i.value is not None:
            reg.history.append(i.value)
        ref = tables.insert_interval(tx, interval_row(i, self._grid.kind, flags))
        self._store.outbox_add(tx, tables.INTERVAL_KIND, ref, i.end_ms)
        self.counts.intervals += 1
        self.alarms.on_interval(tx, i)

    def _week_before(self, tx: Any, end_ms: int) -> dict[tuple[str, str], Decimal]:
        """Last week's intervals of the boundary a week before `end_ms`: one query for every
        meter's interval of that boundary."""
        then = week_before(self._grid.zone, end_ms)
        if self._last_week[0] != then:
            self._last_week = (then, tables.values_ending_at(tx, self._grid.kind, then))
        return self._last_week[1]

    def _load_recent(self, tx: Any, ts_ms: int
                     ) -> dict[tuple[str, str], tuple[int, Decimal | None, deque[Decimal]]]:
        """Each register's newest interval end and value, and its recent history, from one range
        of the stored intervals (streamed: only `history` values per register are kept)."""
        s = self.settings
        step = STEPS_MS[self._grid.kind]
        longest = max(r.history for r in (s.default_rules, *s.rules.values()))
        since = ts_ms - max(s.max_interpolate_s * 1000, longest * step)
        found: dict[tuple[str, str], tuple[int, Decimal | None, deque[Decimal]]] = {}
        for meter, quantity, end_ms, value, end_value in tables.recent_intervals(
                tx, self._grid.kind, since):
            key = (meter, quantity)
            history = found[key][2] if key in found else deque(
                maxlen=s.rules_of(meter).history)
            if value is not None:
                history.append(value)
            found[key] = (end_ms, end_value, history)
        return found

    def _store_snapshot(self, tx: Any, s: Snapshot) -> None:
        ref = tables.insert_snapshot(tx, tables.SnapshotRow(
            s.meter_id, s.quantity, s.kind, s.ts_ms, s.value, s.quality, s.gap_ms))
        if ref is not None:
            self._store.outbox_add(tx, tables.SNAPSHOT_KIND, ref, s.ts_ms)
            self.counts.snapshots += 1

    def _register(self, tx: Any, meter_id: str, quantity: str, ts_ms: int) -> Register:
        key = (meter_id, quantity)
        reg = self._registers.get(key)
        if reg is None:
            s = self.settings
            track = RegisterTrack(meter_id, quantity, self._grid, s.measured_gap_s * 1000,
                                  s.max_interpolate_s * 1000)
            anchors = self._resume(meter_id, quantity, ts_ms)
            if anchors is not None:
                track.resume(anchors)
            snaps = SnapshotTrack.daily_and_billing(meter_id, quantity, s.timezone,
                                                    s.billing_day, s.billing_hour,
                                                    s.max_interpolate_s * 1000)
            before = self._previous_reading(meter_id, quantity, ts_ms)
            if before is not None:
                snaps.reading_ms, snaps.reading_value = before
            resumable = (self._resumable or {}).pop(key, None)
            history = resumable[2] if resumable else deque(maxlen=s.rules_of(meter_id).history)
            reg = self._registers[key] = Register(track, snaps, history)
        return reg

    def _previous_reading(self, meter_id: str, quantity: str, ts_ms: int
                          ) -> tuple[int, Decimal] | None:
        for before in self._store.last_readings(meter_id, RESUME_LOOKBACK):
            value = next((v.value for v in before.values if v.quantity == quantity), None)
            if (before.ts_ms < ts_ms and isinstance(value, Decimal)
                    and not before.flags & FLAG_METER_RECORD):  # the track follows live reads
                return before.ts_ms, value
        return None

    def _resume(self, meter_id: str, quantity: str, ts_ms: int) -> Anchors | None:
        last = (self._resumable or {}).get((meter_id, quantity))
        if last is None:
            return None
        end_ms, end_value, _ = last
        if end_value is None or end_ms > ts_ms:
            return None
        anchors = Anchors(end_ms, end_value, end_ms, end_value, end_value)
        for reading in self._store.readings_between(meter_id, end_ms + 1, ts_ms):
            value = next((v.value for v in reading.values if v.quantity == quantity), None)
            if isinstance(value, Decimal):
                anchors.span_gap_ms = max(anchors.span_gap_ms, reading.ts_ms - anchors.reading_ms)
                anchors.reading_ms, anchors.reading_value = reading.ts_ms, value
        LOGGER.debug("analytics_track_resumed", extra={"meter": meter_id, "quantity": quantity,
                                                       "from_ms": end_ms})
        return anchors
