"""A wireless M-Bus dongle that enumerates after the service started (a USB stick): one
`port_unavailable` event, retries with backoff, and its telegrams are read once it appears."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

from board.interface import SerialSpec
from board.simulated import SimulatedBoard
from board.watchdog import SystemdNotifier
from core.clock import SYSTEM_CLOCK
from drivers.mbus.records import RecordSpec
from drivers.readings import Sample
from drivers.wmbus import receiver as R
from drivers.wmbus.builder import build_frame, build_payload
from drivers.wmbus.keys import KeyStore
from drivers.wmbus.sim import DongleSimulator
from gateway.app.supervision import Failure, Supervisor
from gateway.config.loader import load_config
from gateway.wiring.protocols import open_buses
from tests.harness.eventually import eventually_async

KEY = "00112233445566778899AABBCCDDEEFF"
WAIT_S = 15  # upper bound for a condition to become true; never a duration asserted on


class CountingBoard(SimulatedBoard):
    def __init__(self, state_dir: Path) -> None:
        super().__init__(state_dir)
        self.opens = 0

    def open_serial(self, spec: SerialSpec, timeout_s: float | None = None) -> Any:
        self.opens += 1
        return super().open_serial(spec, timeout_s)


def site(tmp_path: Path, port: Path) -> Path:
    (tmp_path / "site.toml").write_text(f"""
gateway_id = "gw-late"
[storage]
path = "gw.db"
[[bus]]
id = "radio"
port = "{port}"
dongle = "im871a"
link_mode = "T1"
key_file = "{tmp_path / 'keys.json'}"
[[meter]]
id = "water-7"
bus = "radio"
protocol = "wmbus"
address = "33333333"
""")
    return tmp_path / "site.toml"


async def until(condition: Any) -> None:
    await eventually_async(condition, WAIT_S, "the late dongle's readings")


async def test_a_dongle_plugged_in_after_start_is_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(R, "RECONNECT_FIRST_S", 0.01)  # retries come quickly in the test
    monkeypatch.setattr(R, "RECONNECT_MAX_S", 0.04)
    KeyStore(tmp_path / "keys.json").add("33333333", KEY)
    port = tmp_path / "im.tty"  # no stick yet: the path does not exist
    config = load_config(site(tmp_path, port))
    board = CountingBoard(tmp_path / "board")
    events: list[tuple[str, str | None, dict[str, Any], str]] = []

    def record(kind: str, meter: str | None, data: dict[str, Any], severity: str) -> None:
        events.append((kind, meter, data, severity))

    _polled, (source,) = open_buses(config, board, record, SYSTEM_CLOCK)
    accepted: list[tuple[str, list[Sample], int]] = []
    failures: list[Failure] = []
    sup = Supervisor(board, notifier=SystemdNotifier(None), on_failure=failures.append)
    sup.spawn("push-radio", functools.partial(source.run,
                                              lambda *reading: accepted.append(reading)))
    await until(lambda: board.opens >= 4)  # retried a few times with backoff
    kinds = [kind for kind, *_ in events]
    assert kinds == ["port_unavailable"]  # once, not per retry
    assert events[0][2]["bus"] == "radio" and events[0][2]["port"] == str(port)
    assert failures == [] and sup.stale() == []  # waiting for a port is not a crash
    frames = [build_frame("KAM", "33333333", 1, 7, build_payload([RecordSpec(0xC, 0x13, n)]),
                          access_number=n, key=bytes.fromhex(KEY)) for n in range(1, 5)]
    sim = DongleSimulator("im871a", frames, port, interval_s=0.05)
    sim.start()  # the stick enumerates
    try:
        await until(lambda: accepted and ("wmbus_dongle_reconnected", None) in
                    [(kind, meter) for kind, meter, *_ in events])
    finally:
        await sup.stop()
        sim.stop()
    meter_id, samples, _ts = accepted[0]
    assert meter_id == "water-7"
    assert [s.quantity for s in samples] == ["volume"]
    assert [kind for kind, *_ in events].count("port_unavailable") == 1
    assert failures == []
