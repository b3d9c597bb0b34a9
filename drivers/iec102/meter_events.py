"""The meter's own events (M_SP_TA_2) and clock drift handed to the gateway's events: per meter,
the events newer than the last one handed on (the first read looks back FIRST_WINDOW)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Final
from zoneinfo import ZoneInfo

from drivers.errors import FrameError
from drivers.iec102.session import RequestRefused, Session
from drivers.iec102.timetags import TimeA, tag_time

FIRST_WINDOW: Final = dt.timedelta(days=1)
EventSink = Callable[[str, str | None, dict[str, Any], str], None]   # drivers.plugin's shape


class EventWatch:
    def __init__(self, report: EventSink | None) -> None:
        self.report = report
        self._last: dict[str, dt.datetime] = {}

    def drift(self, meter_id: str, meter_time: dt.datetime, gateway_ms: int,
              limit_s: int) -> None:
        """A `meter_clock_drift` warning when the meter's clock is off by more than `limit_s`
        (the clock is not set from here: the plugin does not know whether ours is synced)."""
        drift_s = int(meter_time.timestamp() - gateway_ms / 1000)
        if self.report is not None and abs(drift_s) > limit_s:
            self.report("meter_clock_drift", meter_id, {"drift_s": drift_s}, "warning")

    async def collect(self, meter_id: str, session: Session, records: tuple[int, ...],
                      meter_wall: dt.datetime, zone: ZoneInfo) -> int:
        """Read each event record since the last event handed on; returns how many went."""
        if self.report is None or not records:
            return 0
        since = self._last.get(meter_id, meter_wall - FIRST_WINDOW)
        newest, sent = since, 0
        for record in records:
            try:
                events = await session.read_events(record, TimeA.of(since), TimeA.of(meter_wall))
            except RequestRefused:
                continue   # no such record on this meter, or nothing in the range
            for event in events:
                try:
                    wall = event.time.wall()
                except FrameError:
                    continue
                if wall <= since:
                    continue
                self.report("meter_event", meter_id, {
                    "record": record, "group": event.group, "code": event.code,
                    "spi": event.spi, "time": tag_time(event.time, zone).isoformat()}, "info")
                newest, sent = max(newest, wall), sent + 1
        self._last[meter_id] = newest
        return sent
