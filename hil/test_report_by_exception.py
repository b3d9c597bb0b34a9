"""Whole system, report by exception: the real `gateway run` reading simulated meters over a
pty (RTU) and RTU-over-TCP (a serial device server) with `[report_by_exception]`: every reading
is stored, only the first set of each meter gets an outbox row while its values stay inside
their bands and its silence is short; a meter with zero-width bands sends as its values move."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.modbus.site import RunningSim, SimBus, SimMeter, site_config, start_simulators
from tests.harness.gateway_process import GatewayProcess

SITE = (SimBus("rs485-1", "rtu", (SimMeter("shop-01", 1, "eastron_sdm630", 1),
                                  SimMeter("shop-02", 2, "eastron_sdm630", 2))),
        SimBus("nport-1", "rtu_tcp", (SimMeter("pump-01", 5, "abb_b23", 3),)))
SECTION = """
[report_by_exception]
max_silence_s = 3600
deadbands.voltage_l1 = { absolute = "50" }
deadbands.frequency = { absolute = "5" }
[report_by_exception.meters.shop-02]
deadbands.frequency = { absolute = "0" }
deadbands.voltage_l1 = { absolute = "0" }
"""


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RunningSim]:
    running = start_simulators(SITE, tmp_path / "sim")
    yield running
    running.stop()


def _outbox_rows(db: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        rows = conn.execute("SELECT m.id, count(*) FROM outbox o JOIN readings r ON r.id = o.ref"
                            " JOIN meters m ON m.mid = r.meter WHERE o.kind = 'reading'"
                            " GROUP BY m.id").fetchall()
    return {str(meter): int(n) for meter, n in rows}


def test_every_reading_is_stored_and_only_changes_are_queued(sim: RunningSim,
                                                             tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text(site_config(sim, tmp_path, gateway_id="gw-rbe", poll_interval_s=1,
                                  commit_interval_ms=200, extra=SECTION))
    assert 'framing = "rtu"' in config.read_text()
    with GatewayProcess(config, tmp_path / "gateway.log") as gw:
        counts = gw.wait_for_readings(tmp_path / "gateway.db", ["shop-01", "shop-02", "pump-01"],
                                      at_least=4)
        assert gw.stop() == 0, gw.log_tail()
    queued = _outbox_rows(tmp_path / "gateway.db")
    assert queued["shop-01"] == 1 and queued["pump-01"] == 1, (queued, counts)
    # the simulator's voltage and frequency move at nearly every read: sent
    assert queued["shop-02"] > 1, queued
