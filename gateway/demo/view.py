"""The demo's two views of one `Snapshot`: a refreshing panel on a terminal, plain lines if not.

The panel (rich) shows the meters with their last values, credit and relay per prepaid meter,
the uplink with its last acked batch, the gateway's recent events and the story's steps. When
stdout is no terminal (a pipe, a log file, a test) the same data goes out as lines, each said
once: readings as they are stored, new events, notes and uplink changes.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import TextIO

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from gateway.demo.status import EVENTS_SHOWN, Snapshot, clock_text, event_text, headline
from storage.records import ReadingSet

SEVERITY_STYLE = {"warning": "yellow", "error": "bold red", "critical": "bold red"}
RELAY_STYLE = {"closed": "green", "OPEN": "bold red", "?": "dim"}
UPLINK_REPORT_S = 5.0
SIDE_BY_SIDE_WIDTH = 110  # narrower terminals get the uplink below the prepaid meters


def render(snap: Snapshot, *, console_hint: str = "", width: int = SIDE_BY_SIDE_WIDTH) -> Group:
    """The whole panel: a title line, the meters, prepay beside the uplink (below it on a
    narrow terminal), events, notes."""
    title = Text.assemble((f"gateway demo  {snap.gateway_id}", "bold"),
                          f"   running {int(snap.elapsed_s) // 60:02d}:"
                          f"{int(snap.elapsed_s) % 60:02d}   config {snap.config_path}")
    middle: Table | Group
    if width >= SIDE_BY_SIDE_WIDTH:
        middle = Table.grid(expand=True, padding=(0, 1))
        middle.add_column(ratio=3)
        middle.add_column(ratio=2)
        middle.add_row(_prepaid(snap), _uplink(snap))
    else:
        middle = Group(_prepaid(snap), _uplink(snap))
    footer = Text("Ctrl-C stops" + (f"   {console_hint}" if console_hint else ""), style="dim")
    return Group(title, _meters(snap), middle, _events(snap), _notes(snap), footer)


def _meters(snap: Snapshot) -> Panel:
    table = Table(expand=True, box=None, padding=(0, 1), header_style="bold cyan")
    for name in ("meter", "read by", "last"):
        table.add_column(name, no_wrap=True)
    # one line per meter: the values take the room left and are cut at the edge
    table.add_column("values", no_wrap=True, overflow="ellipsis", ratio=1)
    for row in snap.meters:
        last = clock_text(row.ts_ms) if row.ts_ms else Text("waiting", style="dim")
        table.add_row(row.meter_id, row.source, last, row.values or f"({row.count} values)")
    return Panel(table, title=f"meters ({len(snap.meters)})", title_align="left")


def _prepaid(snap: Snapshot) -> Panel:
    table = Table(expand=True, box=None, padding=(0, 1), header_style="bold cyan")
    for name in ("meter", "tariff", "credit", "warn below", "relay"):
        table.add_column(name, no_wrap=True)
    for row in snap.prepaid:
        table.add_row(row.meter_id, row.tariff, row.credit, row.warn_below,
                      Text(row.relay, style=RELAY_STYLE.get(row.relay, "")))
    return Panel(table, title="prepaid", title_align="left")


def _uplink(snap: Snapshot) -> Panel:
    up = snap.uplink
    if up.broker is None:
        body = Text("off: install mosquitto\nor pass --broker", style="dim")
    else:
        state = Text("connected", style="green") if up.connected else Text("connecting",
                                                                            style="yellow")
        body = Text.assemble("broker  ", up.broker, "\nstate   ", state,
                             f"\nlast acked batch  {up.last_ack if up.last_ack else '-'}",
                             f"\nbacklog  {up.backlog} records",
                             f"\nhead-end  {up.headend_batches} batches, {up.headend_acks} acks")
    return Panel(body, title="uplink", title_align="left")


def _events(snap: Snapshot) -> Panel:
    lines = [Text(event_text(e), style=SEVERITY_STYLE.get(e.severity, ""), no_wrap=True,
                  overflow="ellipsis") for e in snap.events[:EVENTS_SHOWN]]
    return Panel(Group(*lines) if lines else Text("none yet", style="dim"),
                 title="recent events", title_align="left")


def _notes(snap: Snapshot) -> Panel:
    body = Group(*[Text(n) for n in snap.notes]) if snap.notes else Text("starting", style="dim")
    return Panel(body, title="demo story", title_align="left")


class PlainLines:
    """The line view: each reading, new event, note and uplink change said once."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.event_id = 0
        self.notes_said = 0
        self.connected: bool | None = None
        self.acked: int | None = None
        self.reported = 0.0

    def say(self, line: str) -> None:
        # a closed stdout (`gateway demo | head`) must not stop the site: the output is a view
        with contextlib.suppress(BrokenPipeError, ValueError):
            self.out.write(line + "\n")
            self.out.flush()

    def reading(self, reading: ReadingSet) -> None:
        self.say(f"{clock_text(reading.ts_ms)}  {reading.meter_id:<12} {headline(reading)}"
                 f"  ({len(reading.values)} values)")

    def update(self, snap: Snapshot) -> None:
        for event in reversed(snap.events):
            if (event.id or 0) > self.event_id:
                self.event_id = event.id or 0
                self.say(f"event {event_text(event)}")
        fresh = min(len(snap.notes), snap.notes_total - self.notes_said)
        for note in snap.notes[len(snap.notes) - fresh:]:
            self.say(f"demo {note}")
        self.notes_said = snap.notes_total
        self._uplink(snap)

    def _uplink(self, snap: Snapshot) -> None:
        up = snap.uplink
        if up.broker is None:
            return
        if up.connected != self.connected:
            self.connected = up.connected
            self.say(f"uplink {'connected to' if up.connected else 'connecting to'} {up.broker}")
        # acks come every second or so: a summary now and then, when something moved
        if up.last_ack != self.acked and time.monotonic() - self.reported >= UPLINK_REPORT_S:
            self.acked, self.reported = up.last_ack, time.monotonic()
            self.say(f"uplink last acked batch {up.last_ack}, backlog {up.backlog} records; "
                     f"head-end stored {up.headend_batches} batches, sent {up.headend_acks} acks")
