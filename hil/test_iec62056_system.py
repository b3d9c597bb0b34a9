"""Whole-system: a simulated optical meter on a pty, read through the gateway, into storage."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import serial

from drivers.iec62056.reader import Iec62056Bus
from drivers.iec62056.sim import MeterSim, meter_from_fixture
from storage.records import ReadingSet, StoredValue
from storage.store import Store
from tests.corpus import CORPUS
from tests.harness.gateway_process import GatewayProcess

READOUTS = str(CORPUS / "iec62056/readouts.json")
E650_INDEX = 4
GATEWAY = Path(sys.executable).with_name("gateway")
# The service reads every meter once at start-up; a 4800-baud E650 readout takes about a second.
FIRST_READING_DEADLINE_S = 60.0


def _open_7e1(path: str) -> Callable[[int], serial.Serial]:
    """A pyserial factory at 7E1, as the service builds on board.open_serial."""
    return lambda baud: serial.Serial(path, baud, bytesize=7, parity="E", timeout=0)


async def test_driver_to_storage_keeps_values_exact(tmp_path: Path) -> None:
    with MeterSim([meter_from_fixture(READOUTS, E650_INDEX, address="97846089")]) as sim:
        bus = Iec62056Bus(_open_7e1(sim.port_path))
        samples = await bus.read_meter("e650", "97846089", {}, 30.0)
        await bus.close()
    store = Store.open(tmp_path / "gw.db")
    try:
        store.upsert_meter("e650", protocol="iec62056", bus="optical")
        values = tuple(StoredValue(s.quantity, s.value, s.unit) for s in samples)
        store.add_readings([ReadingSet("e650", 1_700_000_000_000, values)])
        stored = {v.quantity: v.value for v in store.last_readings("e650", 1)[0].values}
    finally:
        store.close()
    assert stored["import_active_energy"] == Decimal("1005")
    assert stored["voltage_l3"] == Decimal("228.1")
    assert stored["meter_datetime"] == "2022-12-28T11:03:17"


def _config(tmp_path: Path, port: str) -> Path:
    config = tmp_path / "gateway.toml"
    config.write_text(textwrap.dedent(f"""
        gateway_id = "gw-hil-iec"
        timezone = "UTC"

        [storage]
        path = "{tmp_path / 'gw.db'}"

        [[bus]]
        id = "optical"
        port = "{port}"
        baudrate = 300
        bytesize = 7
        parity = "E"

        [[meter]]
        id = "e650"
        bus = "optical"
        protocol = "iec62056"
        address = "97846089"
        poll_interval_s = 900
        timeout_ms = 60000
        max_baud = 9600
    """))
    return config


def _stored_reading(config: Path) -> dict[str, str] | None:
    done = subprocess.run([str(GATEWAY), "readings", "--config", str(config), "--meter", "e650",
                           "--last", "1", "--json"], capture_output=True, text=True, check=False)
    return json.loads(done.stdout.splitlines()[0]) if done.returncode == 0 else None


def test_gateway_process_stores_an_optical_meter_reading(tmp_path: Path) -> None:
    with MeterSim([meter_from_fixture(READOUTS, E650_INDEX, address="97846089")]) as sim:
        config = _config(tmp_path, sim.port_path)
        with GatewayProcess(config, tmp_path / "gateway.log") as gateway:
            gateway.wait_for_readings(tmp_path / "gw.db", ["e650"], at_least=1,
                                      deadline_s=FIRST_READING_DEADLINE_S)
            reading = _stored_reading(config)
            assert gateway.stop() == 0, gateway.log_tail()
    assert reading is not None
    assert reading["values"]["import_active_energy"] == "1005"
    assert reading["units"]["import_active_energy"] == "kWh"
    assert sim.data_bauds[-1] == 4800
