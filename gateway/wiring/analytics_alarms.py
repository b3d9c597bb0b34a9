"""Balance results and alarms from the intervals and readings the analytics hook sees, stored
in the same transaction: balance rows (outbox kind `balance`), alarm state (analytics_alarms)
and one `alarm_raised` / `alarm_cleared` event per change (outbox kind `event`)."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any

from gateway.analytics.alarms import (
    PHASES,
    AlarmBook,
    AlarmChange,
    DemandWindow,
    Persisting,
    cos_phi,
    imbalance_percent,
    phases_lost,
    voltage_outside,
)
from gateway.analytics.balance import BalanceResult, NodeBook
from gateway.analytics.grid import STEPS_MS, Grid, local_date
from gateway.analytics.intervals import Interval
from gateway.analytics.settings import AnalyticsSettings
from storage import analytics as tables
from storage.records import ReadingSet
from storage.store import Store
from uplink.records import register_record_encoder

LOGGER = logging.getLogger(__name__)
ACTIVE, REACTIVE = "import_active_energy", "import_reactive_energy"
_VOLTAGES = {f"voltage_{p}": p for p in PHASES}
_CURRENTS = {f"current_{p}": p for p in PHASES}


class AnalyticsAlarms:
    def __init__(self, settings: AnalyticsSettings, store: Store, grid: Grid) -> None:
        store.register_outbox_kind(tables.BALANCE_KIND, tables.BALANCE_PRIORITY,
                                   tables.balance_bodies)
        register_record_encoder(tables.BALANCE_KIND, lambda body: {
            k: v for k, v in dict(body).items() if k != "ts_ms"})
        self.settings = settings
        self._store = store
        self._grid = grid
        self._books = [NodeBook(node) for node in settings.balance]
        with store.transaction() as tx:
            self.book = AlarmBook({a["key"]: a["raised_ms"] for a in tables.active_alarms(tx)})
        self._demand: dict[str, DemandWindow] = {}
        self._voltage: dict[str, Persisting] = {}
        self._days: dict[str, dict[dt.date, dict[str, Decimal]]] = {}
        self.balances = 0

    # -- from intervals ---------------------------------------------------------------------

    def on_interval(self, tx: Any, i: Interval) -> None:
        if i.quantity == self.settings.balance_quantity:
            for book in self._books:
                if i.meter_id in book.members:
                    step = STEPS_MS[self._grid.kind]
                    for result in book.add(i.meter_id, i.start_ms, i.end_ms, i.value, step):
                        self._balance(tx, book, result)
        if i.value is None:
            return
        limits = self.settings.alarms_of(i.meter_id)
        if i.quantity == ACTIVE and limits.contracted_power_w is not None:
            window = self._demand.setdefault(
                i.meter_id, DemandWindow(max(900, (i.end_ms - i.start_ms) // 1000),
                                         limits.demand == "sliding"))
            demand = window.add((i.end_ms - i.start_ms) // 1000, i.value)
            if demand is not None:
                self._change(tx, self.book.update(
                    "max_demand", i.meter_id, demand > limits.contracted_power_w, i.end_ms,
                    {"demand_w": str(demand.quantize(Decimal(1))),
                     "contracted_w": str(limits.contracted_power_w)}))
        if i.quantity in (ACTIVE, REACTIVE) and limits.cos_phi_min is not None:
            self._reactive(tx, i, limits.cos_phi_min, limits.reactive_period == "month")

    def _reactive(self, tx: Any, i: Interval, minimum: Decimal, monthly: bool) -> None:
        """A day's (or month's) cos phi, judged once both registers have an interval of a
        later one."""
        assert i.value is not None
        days = self._days.setdefault(i.meter_id, {})
        day = local_date(self._grid.zone, i.start_ms)
        if monthly:
            day = day.replace(day=1)
        sums = days.setdefault(day, {})
        sums[i.quantity] = sums.get(i.quantity, Decimal(0)) + i.value
        if not all(q in sums for q in (ACTIVE, REACTIVE)):
            return  # the earlier days may still get intervals of the other register
        for past in sorted(d for d in days if d < day):
            done = days.pop(past)
            cp = cos_phi(done.get(ACTIVE, Decimal(0)), done.get(REACTIVE, Decimal(0)))
            if cp is not None:
                self._change(tx, self.book.update(
                    "reactive_ratio", i.meter_id, cp < minimum, i.start_ms,
                    {"period": past.isoformat()[:7] if monthly else past.isoformat(),
                     "cos_phi": str(cp.quantize(Decimal("0.001"))),
                     "minimum": str(minimum)}))

    def _balance(self, tx: Any, book: NodeBook, r: BalanceResult) -> None:
        ref = tables.insert_balance(tx, tables.BalanceRow(
            r.node, r.start_ms, r.end_ms, r.status, r.parent, r.children, r.loss,
            r.loss_percent, r.missing))
        if ref is not None:
            self._store.outbox_add(tx, tables.BALANCE_KIND, ref, r.end_ms)
            self.balances += 1
        holds = book.over_threshold(r)
        if holds is not None:
            self._change(tx, self.book.update(
                "balance_loss", r.node, holds, r.end_ms,
                {"loss": str(r.loss), "loss_percent": str(r.loss_percent),
                 "threshold_percent": str(book.node.threshold_percent),
                 "intervals": book.over}))

    # -- from readings ----------------------------------------------------------------------

    def on_reading(self, tx: Any, reading: ReadingSet) -> None:
        limits = self.settings.alarms_of(reading.meter_id)
        if not limits.on_readings:
            return
        voltages: dict[str, Decimal] = {}
        currents: dict[str, Decimal] = {}
        for v in reading.values:
            if isinstance(v.value, Decimal):
                if v.quantity in _VOLTAGES:
                    voltages[_VOLTAGES[v.quantity]] = v.value
                elif v.quantity in _CURRENTS:
                    currents[_CURRENTS[v.quantity]] = v.value
        meter, ts = reading.meter_id, reading.ts_ms
        if voltages and (limits.voltage_low is not None or limits.voltage_high is not None):
            outside = voltage_outside(limits, voltages)
            persisting = self._voltage.setdefault(meter, Persisting())
            holds = persisting.holds(bool(outside), ts, limits.voltage_for_s * 1000)
            if holds or not outside:
                self._change(tx, self.book.update("voltage_band", meter, holds, ts,
                                                  {"phases": outside}))
        if voltages and limits.phase_loss_v is not None:
            lost = phases_lost(limits, voltages)
            self._change(tx, self.book.update("phase_loss", meter, bool(lost), ts,
                                              {"phases": lost}))
        if len(currents) >= 2 and limits.imbalance_percent is not None:
            percent = imbalance_percent(list(currents.values()))
            if percent is not None:
                self._change(tx, self.book.update(
                    "current_imbalance", meter, percent > limits.imbalance_percent, ts,
                    {"percent": str(percent.quantize(Decimal("0.1")))}))

    # -- changes ----------------------------------------------------------------------------

    def _change(self, tx: Any, change: AlarmChange | None) -> None:
        if change is None:
            return
        subject_is_meter = change.subject in self.settings.commodities
        data = {"alarm": change.alarm, "subject": change.subject, **change.data}
        if change.raised:
            tables.set_alarm(tx, change.key, change.alarm, change.subject, change.severity,
                             change.ts_ms, change.data)
            kind, severity = "alarm_raised", change.severity
        else:
            tables.clear_alarm(tx, change.key)
            kind, severity = "alarm_cleared", "info"
        self._store.add_event(kind, meter_id=change.subject if subject_is_meter else None,
                              data=data, ts_ms=change.ts_ms, severity=severity, tx=tx)
        LOGGER.info(kind, extra={"meter": change.subject, "alarm": change.alarm})

