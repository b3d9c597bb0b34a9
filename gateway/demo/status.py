"""What the demo's view shows, read from the running service and the head-end as plain data.

One `Snapshot` per refresh: the panel (gateway/demo/view.py) and the plain lines render the
same data. Everything is read on the service's loop thread, the store's one owner.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

from board.interface import BoardError
from core.money import Money
from storage.records import EventRecord, ReadingSet

# The quantities worth a glance on one row; the rest is in `gateway readings`.
HEADLINE: Final = ("import_active_energy", "import_active_energy_t1", "active_power", "volume",
                   "heat_energy", "voltage", "voltage_l1", "current", "current_l1")
HEADLINE_VALUES: Final = 4
EVENTS_SHOWN: Final = 8  # on the panel
EVENTS_READ: Final = 50  # per refresh: the line view says each new one
NOTES_KEPT: Final = 6
# Events worth a line in the view; readings of their own fill the meters table.
QUIET_EVENTS: Final = frozenset({"input_changed"})


@dataclass(frozen=True)
class MeterRow:
    meter_id: str
    source: str  # protocol and bus, as configured
    ts_ms: int | None
    values: str
    count: int


@dataclass(frozen=True)
class PrepaidRow:
    meter_id: str
    tariff: str
    credit: str
    warn_below: str
    relay: str  # "closed" (supplied), "open" or "?"


@dataclass(frozen=True)
class UplinkRow:
    broker: str | None
    connected: bool
    last_ack: int | None
    backlog: int
    headend_batches: int
    headend_acks: int


@dataclass(frozen=True)
class Snapshot:
    gateway_id: str
    config_path: str
    elapsed_s: float
    meters: list[MeterRow]
    prepaid: list[PrepaidRow]
    uplink: UplinkRow
    events: list[EventRecord]  # newest first
    notes: list[str]
    notes_total: int  # notes ever made (the list keeps the last few)


def headline(reading: ReadingSet) -> str:
    values = {v.quantity: v for v in reading.values}
    parts = [f"{q}={values[q].value} {values[q].unit}".rstrip() for q in HEADLINE if q in values]
    return "  ".join(parts[:HEADLINE_VALUES])


def clock_text(ts_ms: int) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts_ms / 1000)) + "Z"


def event_text(event: EventRecord) -> str:
    data = ", ".join(f"{k}={v}" for k, v in event.data.items()
                     if isinstance(v, str | int) and not isinstance(v, bool))
    meter = f" {event.meter_id}" if event.meter_id else ""
    return f"{clock_text(event.ts_ms)}{meter} {event.kind}" + (f" ({data})" if data else "")


@dataclass
class Collector:
    """Keeps the last reading per meter and the story's notes; makes snapshots."""

    service: Any
    config_path: str
    broker_url: str | None
    headend: Any = None
    started: float = field(default_factory=time.monotonic)
    last: dict[str, ReadingSet] = field(default_factory=dict)
    notes: deque[str] = field(default_factory=lambda: deque(maxlen=NOTES_KEPT))
    notes_total: int = 0

    def on_reading(self, reading: ReadingSet) -> None:
        self.last[reading.meter_id] = reading

    def note(self, text: str) -> None:
        self.notes.append(f"{clock_text(int(time.time() * 1000))} {text}")
        self.notes_total += 1

    def snapshot(self) -> Snapshot:
        store = self.service.store
        events = [] if store is None else [
            e for e in store.recent_events(EVENTS_READ) if e.kind not in QUIET_EVENTS]
        return Snapshot(self.service.config.gateway_id, self.config_path,
                        time.monotonic() - self.started, self._meters(), self._prepaid(),
                        self._uplink(), events, list(self.notes),
                        self.notes_total)

    def _meters(self) -> list[MeterRow]:
        rows = []
        sources = {m.id: f"{m.protocol} {m.bus}" for m in self.service.config.meters}
        for meter_id in sorted(set(sources) | set(self.last)):
            reading = self.last.get(meter_id)
            rows.append(MeterRow(meter_id, sources.get(meter_id, "sub-meter"),
                                 reading.ts_ms if reading else None,
                                 headline(reading) if reading else "",
                                 len(reading.values) if reading else 0))
        return rows

    def _prepaid(self) -> list[PrepaidRow]:
        prepay, store = self.service.prepay, self.service.store
        if prepay is None or store is None:
            return []
        from storage import ledger

        settings = prepay.engine.settings
        rows = []
        for meter_id, meter in sorted(settings.meters.items()):
            with store.transaction() as tx:
                held = ledger.account(tx, meter_id)
                warn = ledger.settings(tx, meter_id).get("warn_limit", meter.warn_limit)
            try:
                closed = prepay.board.output_state(meter.relay)
            except BoardError:  # shown as "?": the view never stops the demo
                closed = None
            relay = "?" if closed is None else ("closed" if closed else "OPEN")
            rows.append(PrepaidRow(meter_id, prepay.engine.book.assignments.get(meter_id, ""),
                                   Money(held.credit - held.debt, settings.currency).exact_text(),
                                   Money(warn, settings.currency).text(), relay))
        return rows

    def _uplink(self) -> UplinkRow:
        state = self.service.uplink.state() if self.service.uplink is not None else {}
        stats = self.headend.stats if self.headend is not None else None
        return UplinkRow(self.broker_url, bool(state.get("connected")), state.get("last_ack"),
                         int(state.get("backlog") or 0), stats.stored if stats else 0,
                         stats.acks_sent if stats else 0)
