"""Whole system: the real `gateway run` process reads simulated Modbus meters over ptys and TCP.

Checks that every stored value is exactly what the simulator served, that a missing meter does
not stop the others, that SIGTERM stops cleanly, and that a corrupt database stops the start.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.modbus.profiles import get_profile
from drivers.modbus.site import DEMO_SITE, RunningSim, site_config, start_simulators
from storage.store import Store
from tests.harness.gateway_process import GatewayProcess


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RunningSim]:
    running = start_simulators(DEMO_SITE, tmp_path / "sim")
    yield running
    running.stop()


def served_values(record: Path) -> dict[tuple[str, int, str], set[str]]:
    """(bus, slave, quantity) -> every exact value the simulator served for it."""
    served: dict[tuple[str, int, str], set[str]] = {}
    for line in record.read_text().splitlines():
        entry = json.loads(line)
        for quantity, value in entry["values"].items():
            served.setdefault((entry["bus"], entry["slave"], quantity), set()).add(value)
    return served


def test_every_reading_is_stored_with_the_simulators_exact_values(
        sim: RunningSim, tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text(site_config(sim, tmp_path, poll_interval_s=2, commit_interval_ms=300))
    meters = [m for bus in DEMO_SITE for m in bus.meters]
    with GatewayProcess(config, tmp_path / "gateway.log") as gateway:
        gateway.wait_for_readings(tmp_path / "gateway.db", [m.id for m in meters], at_least=3)
        assert gateway.stop() == 0
    log = (tmp_path / "gateway.log").read_text()
    assert '"event":"gateway_stopped"' in log

    served = served_values(sim.record_file)
    store = Store.open(tmp_path / "gateway.db", create=False)
    try:
        total = 0
        for bus in DEMO_SITE:
            for meter in bus.meters:
                readings = store.last_readings(meter.id, 1000)
                assert len(readings) >= 3
                expected = set(get_profile(meter.profile).quantities)
                for reading in readings:
                    assert {v.quantity for v in reading.values} == expected
                    for value in reading.values:
                        key = (bus.id, meter.address, value.quantity)
                        assert str(value.value) in served[key], (meter.id, value)
                        total += 1
        # every reading went to the outbox in its own transaction: nothing is missing upstream
        pending = store.pending_outbox(100_000)
        assert sum(1 for r in pending if r.kind == "reading") == sum(
            len(store.last_readings(m.id, 1000)) for m in meters)
        assert total > 0
    finally:
        store.close()


def test_a_silent_meter_gets_an_event_and_the_others_keep_reading(
        sim: RunningSim, tmp_path: Path) -> None:
    ghost = ('\n[[meter]]\nid = "ghost-99"\nbus = "rs485-1"\nprotocol = "modbus"\n'
             'address = 99\nprofile = "eastron_sdm120"\npoll_interval_s = 2\ntimeout_ms = 300\n')
    config = tmp_path / "site.toml"
    config.write_text(site_config(sim, tmp_path, poll_interval_s=2, commit_interval_ms=300,
                                  extra=ghost))
    with GatewayProcess(config, tmp_path / "gateway.log") as gateway:
        gateway.wait_for_readings(tmp_path / "gateway.db", ["shop-01", "shop-02", "incomer"], 3)
        assert gateway.stop() == 0
    store = Store.open(tmp_path / "gateway.db", create=False)
    try:
        events = store.recent_events(100, meter_id="ghost-99")
        assert [e.kind for e in events].count("meter_unreachable") == 1  # once, not per poll
        assert store.last_readings("ghost-99", 10) == []
    finally:
        store.close()


def test_corrupt_database_stops_the_start_and_is_left_untouched(tmp_path: Path) -> None:
    sim = RunningSim(subprocess.Popen([sys.executable, "-c", "pass"]), {}, tmp_path / "x", ())
    config = tmp_path / "site.toml"
    config.write_text(site_config(sim, tmp_path))
    db = tmp_path / "gateway.db"
    garbage = b"SQLite format 3\x00" + bytes(range(256)) * 64
    db.write_bytes(garbage)
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "run", "--config", str(config)],
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 1
    assert str(db) in done.stderr.decode()
    assert db.read_bytes() == garbage
