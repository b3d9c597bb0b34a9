"""The demo's views of one snapshot: the rich panel (recorded at a fixed width, and on a real
terminal in tmux) and the plain lines, which say each event, note and uplink change once."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from rich.console import Console

from gateway.demo.status import MeterRow, PrepaidRow, Snapshot, UplinkRow
from gateway.demo.view import PlainLines, render
from storage.records import EventRecord
from tests.harness.eventually import eventually
from uplink.localbroker import MOSQUITTO

GATEWAY = Path(sys.executable).with_name("gateway")
TS = 1_796_400_000_000  # 2026-12-04T16:00:00Z
PANEL_DEADLINE_S = 120.0


def snapshot(*, notes: tuple[str, ...] = ("16:00:01Z voucher redeemed",),
             events: tuple[EventRecord, ...] | None = None) -> Snapshot:
    evs = events if events is not None else (
        EventRecord("relay_opened", TS, "shop-01", "warning", {"reason": "credit_exhausted"}, 7),
        EventRecord("low_credit", TS - 20_000, "shop-01", "warning", {"credit": "0.2000"}, 6))
    return Snapshot(
        gateway_id="gw-demo", config_path="/tmp/x/site.toml", elapsed_s=75,
        meters=[MeterRow("shop-01", "modbus rs485-1", TS, "import_active_energy=1.5 kWh", 19),
                MeterRow("water-31", "wmbus radio-1", TS, "volume=123.468 m3", 1),
                MeterRow("flat-21-gas", "sub-meter", None, "", 0)],
        prepaid=[PrepaidRow("shop-01", "shop", "-0.0175", "0.28", "OPEN"),
                 PrepaidRow("flat-11", "day-night", "19.9975", "5.00", "closed")],
        uplink=UplinkRow("mqtt://127.0.0.1:1883", True, 42, 3, 42, 42),
        events=list(evs), notes=list(notes), notes_total=len(notes))


def test_the_panel_shows_meters_credit_relay_uplink_and_events() -> None:
    console = Console(record=True, width=140, color_system=None)
    console.print(render(snapshot(), console_hint="technician console: gateway console"))
    text = console.export_text()
    assert "running 01:15" in text
    assert "meters (3)" in text
    for row in (("shop-01", "modbus rs485-1", "16:00:00Z", "import_active_energy=1.5 kWh"),
                ("water-31", "wmbus radio-1", "volume=123.468 m3"),
                ("flat-21-gas", "sub-meter", "waiting")):
        line = next(line for line in text.splitlines() if row[0] + " " in line)
        assert all(cell in line for cell in row), line
    credit_line = next(line for line in text.splitlines() if "-0.0175" in line)
    assert "shop" in credit_line and "0.28" in credit_line and "OPEN" in credit_line
    assert "19.9975" in text and "closed" in text
    assert "connected" in text and "last acked batch  42" in text and "42 batches" in text
    assert "16:00:00Z shop-01 relay_opened (reason=credit_exhausted)" in text
    assert "15:59:40Z shop-01 low_credit (credit=0.2000)" in text
    assert "voucher redeemed" in text and "technician console" in text


def test_a_narrow_terminal_gets_the_uplink_below_the_prepaid_meters() -> None:
    console = Console(record=True, width=80, color_system=None)
    console.print(render(snapshot(), width=80))
    lines = console.export_text().splitlines()
    prepaid = next(i for i, line in enumerate(lines) if "─ prepaid " in line)
    uplink = next(i for i, line in enumerate(lines) if "─ uplink " in line)
    assert uplink > prepaid and "uplink" not in lines[prepaid]
    assert all(len(line) <= 80 for line in lines)
    assert any("shop-01" in line and "-0.0175" in line and "OPEN" in line for line in lines)


def test_the_panel_without_uplink_says_how_to_get_one() -> None:
    snap = snapshot()
    snap = Snapshot(**{**snap.__dict__, "uplink": UplinkRow(None, False, None, 0, 0, 0)})
    console = Console(record=True, width=100, color_system=None)
    console.print(render(snap))
    assert "install mosquitto" in console.export_text()


def test_plain_lines_say_each_event_and_note_once() -> None:
    out = io.StringIO()
    plain = PlainLines(out)
    plain.update(snapshot())
    plain.update(snapshot())  # nothing new: nothing said
    newer = EventRecord("relay_closed", TS + 9_000, "shop-01", "info", {"reason": "topup"}, 8)
    plain.update(snapshot(notes=("a", "b"), events=(newer,)))
    lines = out.getvalue().splitlines()
    assert lines == [
        "event 15:59:40Z shop-01 low_credit (credit=0.2000)",
        "event 16:00:00Z shop-01 relay_opened (reason=credit_exhausted)",
        "demo 16:00:01Z voucher redeemed",
        "uplink connected to mqtt://127.0.0.1:1883",
        "uplink last acked batch 42, backlog 3 records; head-end stored 42 batches, sent 42 acks",
        "event 16:00:09Z shop-01 relay_closed (reason=topup)",
        "demo b",
    ]


@pytest.mark.broker
def test_make_run_shows_the_panel_on_a_real_terminal(tmp_path: Path) -> None:
    """`gateway demo` in a tmux pane: the captured screen is the panel, not a scroll."""
    if shutil.which("tmux") is None or MOSQUITTO is None:
        pytest.skip("tmux and mosquitto needed (apt-get install tmux mosquitto)")
    session = f"demo-{uuid.uuid4().hex[:8]}"
    # pytest's COLUMNS / LINES would size the panel, not the pane's own size
    command = (f"env -u COLUMNS -u LINES {GATEWAY} demo --state {tmp_path / 'state'} "
               f"--for {int(PANEL_DEADLINE_S)}")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "150", "-y", "50",
                    command], check=True)
    try:
        def pane() -> str:
            text = subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                  capture_output=True, text=True, check=True).stdout
            # the gas meter read through the P1 port has its own row (columns as wide as the
            # longest meter id)
            assert "connected" in text and re.search(r"flat-21-gas +sub-meter ", text), \
                text[-1500:]
            return text

        screen = eventually(pane, PANEL_DEADLINE_S, "the panel on the tmux pane")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    for part in ("meters (15)", "prepaid", "uplink", "recent events", "demo story",
                 "shop-01", "water-31", "flat-21-gas", "last acked batch"):
        assert part in screen, screen
    assert "{" not in screen  # no JSON log line on the panel: the log went to the state dir
