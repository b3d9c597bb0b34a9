"""The meter's own events (M_SP_TA_2) and its clock: events newer than the gateway holds handed
on as records of series "events" (stored once: the gateway's mark of the series survives a
restart) and as `meter_event`s; the clock drift reported, and the meter's clock set from the
gateway's when that one is synchronised and the step is within limits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo

from drivers.errors import FrameError
from drivers.iec102.records import EVENTS, RecordsUntil, event_sample, window
from drivers.iec102.session import RequestRefused, Session
from drivers.iec102.timetags import tag_time
from drivers.readings import Sample

FIRST_WINDOW: Final = dt.timedelta(days=1)
MOST_PER_READ: Final = dt.timedelta(days=31)
EventSink = Callable[[str, str | None, dict[str, Any], str], None]   # drivers.plugin's shape


@dataclass(frozen=True, slots=True)
class ClockPolicy:
    drift_limit_s: int = 30      # off by more than this: reported, and set when allowed
    max_step_s: int = 300        # a larger step waits for a technician (reported, not set)


class EventWatch:
    def __init__(self, report: EventSink | None,
                 records_until: RecordsUntil | None = None) -> None:
        self.report = report
        self.records_until = records_until or (lambda _m, _s: None)
        self._last: dict[str, int] = {}   # this process's newest event per meter (UTC ms)

    def _emit(self, kind: str, meter_id: str, data: dict[str, Any], level: str) -> None:
        if self.report is not None:
            self.report(kind, meter_id, data, level)

    async def clock(self, meter_id: str, session: Session, meter_time: dt.datetime,
                    gateway_ms: int, synced: bool, policy: ClockPolicy) -> int:
        """The drift (meter minus gateway, s); above the limit a `meter_clock_drift` warning,
        and with the gateway's clock synchronised the meter's set to it (`meter_clock_set`),
        unless the step exceeds `max_step_s` (`meter_clock_set_refused`: for a technician)."""
        drift_s = int(meter_time.timestamp() - gateway_ms / 1000)
        if abs(drift_s) <= policy.drift_limit_s:
            return drift_s
        self._emit("meter_clock_drift", meter_id, {"drift_s": drift_s}, "warning")
        if not synced:
            return drift_s
        if abs(drift_s) > policy.max_step_s:
            self._emit("meter_clock_set_refused", meter_id,
                       {"drift_s": drift_s, "max_step_s": policy.max_step_s}, "warning")
            return drift_s
        zone = meter_time.tzinfo
        now = dt.datetime.fromtimestamp(gateway_ms / 1000, zone)
        await session.set_clock(now.replace(tzinfo=None), bool(now.dst()))
        self._emit("meter_clock_set", meter_id, {"drift_s": drift_s}, "info")
        return drift_s

    async def collect(self, meter_id: str, session: Session, records: tuple[int, ...],
                      meter_wall: dt.datetime, zone: ZoneInfo) -> list[Sample]:
        """Each event record's events after the newest the gateway holds (or FIRST_WINDOW back),
        as samples of series "events"; each also goes as a `meter_event`."""
        if not records:
            return []
        marks = [m for m in (self.records_until(meter_id, EVENTS), self._last.get(meter_id))
                 if m is not None]
        since_ms = max(marks) if marks else None
        span = window(since_ms, meter_wall, zone, FIRST_WINDOW, MOST_PER_READ, past_mark=False)
        samples = []
        for record in records:
            try:
                events = await session.read_events(record, *span.tags(zone))
            except RequestRefused:
                continue   # no such record on this meter, or nothing in the range
            for event in events:
                try:
                    sample = event_sample(record, event, zone)
                    when = tag_time(event.time, zone).isoformat()
                except FrameError:
                    continue
                if since_ms is not None and sample.at_ms is not None and sample.at_ms <= since_ms:
                    continue
                samples.append(sample)
                self._emit("meter_event", meter_id, {
                    "record": record, "group": event.group, "code": event.code,
                    "spi": event.spi, "time": when}, "info")
        newest = [s.at_ms for s in samples if s.at_ms is not None]
        if newest:
            self._last[meter_id] = max(newest + ([since_ms] if since_ms is not None else []))
        return samples
