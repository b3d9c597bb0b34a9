"""Service-side analytics operations: a meter's intervals, the energy balance, the alarms.

They read what the analytics hook stored (storage/analytics.py) and the events; the day is
local to the site (`timezone`). The existing meter-silent and tamper events are folded into
the alarms: `meter_unreachable` raises and `meter_recovered` clears `meter_silent`; prepay's
`tamper_*` events are raises of `tamper`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from gateway.analytics.balance import BalanceResult, day_totals
from gateway.analytics.grid import local_instant_ms
from gateway.console.api import AlarmLine, BalanceLine, ControlError, IntervalLine
from gateway.console.ops_common import OpsBase, utc
from storage import analytics as tables
from storage.errors import StorageError

RECENT_EVENTS = 500  # events looked through for the recent alarms
RECENT_ALARMS = 20
BALANCE_INTERVALS = 4  # the newest intervals of each node shown under its day total


def _detail(data: Any) -> str:
    skip = {"alarm", "subject"}
    return " ".join(f"{k}={v}" for k, v in dict(data).items() if k not in skip)[:60]


class AnalyticsOps(OpsBase):
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.ports.config.timezone or "UTC")

    def _day_span(self, day: dt.date | None) -> tuple[int, int]:
        zone = self._zone()
        if self.ports.config.analytics is None:
            raise ControlError("analytics are not available on this gateway (no [analytics])")
        day = day or dt.datetime.fromtimestamp(self.ports.clock.wall_ms() / 1000, zone).date()
        return (local_instant_ms(zone, day, 0),
                local_instant_ms(zone, day + dt.timedelta(days=1), 0))

    async def intervals(self, meter_id: str, day: dt.date | None) -> list[IntervalLine]:
        self._meter(meter_id)
        start, end = self._day_span(day)
        try:
            rows = tables.intervals_between(self._store().db.conn, meter_id, start, end)
        except StorageError as exc:
            raise ControlError(f"{meter_id}: reading the intervals failed ({exc})") from None
        return [IntervalLine(utc(r.start_ms), r.quantity, r.value, r.quality, r.gap_ms // 1000,
                             list(r.flags)) for r in rows]

    async def balance(self, day: dt.date | None) -> list[BalanceLine]:
        start, end = self._day_span(day)
        try:
            rows = tables.balance_between(self._store().db.conn, start, end)
        except StorageError as exc:
            raise ControlError(f"reading the balance failed ({exc})") from None
        by_node: dict[str, list[BalanceResult]] = {}
        for row in rows:
            by_node.setdefault(row.node, []).append(BalanceResult(
                row.node, row.start_ms, row.end_ms, row.status, row.parent, row.children,
                row.loss, row.loss_percent, row.missing))
        out = []
        for node, results in by_node.items():
            total = day_totals(results)
            for period, r in [("day", total), *(("interval", x) for x in
                                                 results[-BALANCE_INTERVALS:])]:
                if r is not None:
                    out.append(BalanceLine(node, period, utc(r.start_ms), r.status, r.parent,
                                           r.children, r.loss, r.loss_percent, list(r.missing)))
        return out

    async def alarms(self) -> list[AlarmLine]:
        store = self._store()
        try:
            active = tables.active_alarms(store.db.conn)
            events = store.recent_events(RECENT_EVENTS)
        except StorageError as exc:
            raise ControlError(f"reading the alarms failed ({exc})") from None
        lines = [AlarmLine(a["alarm"], a["subject"], a["severity"], utc(a["raised_ms"]), True,
                           _detail(a["data"])) for a in active]
        silent: dict[str, bool] = {}
        recent: list[AlarmLine] = []
        for e in events:  # newest first
            meter = e.meter_id or "-"
            if e.kind in ("alarm_raised", "alarm_cleared"):
                recent.append(AlarmLine(str(e.data.get("alarm")), str(e.data.get("subject")),
                                        e.severity, utc(e.ts_ms), False, e.kind[6:]))
            elif e.kind in ("meter_unreachable", "meter_recovered"):
                silent.setdefault(meter, e.kind == "meter_unreachable")
                recent.append(AlarmLine("meter_silent", meter, e.severity, utc(e.ts_ms), False,
                                        "raised" if e.kind == "meter_unreachable" else "cleared"))
            elif e.kind.startswith("tamper_"):
                recent.append(AlarmLine("tamper", meter, e.severity, utc(e.ts_ms), False,
                                        f"raised {e.kind[7:]}"))
        lines += [AlarmLine("meter_silent", m, "warning", next(
            r.at for r in recent if r.alarm == "meter_silent" and r.subject == m), True, "")
            for m, on in silent.items() if on]
        return lines + recent[:RECENT_ALARMS]
