"""The demo's wired M-Bus site: its TOML passes the config loader, its meters are read exactly
over the pty (secondary and primary addresses) and their registers move with time."""

from __future__ import annotations

import os
import textwrap
from decimal import Decimal
from pathlib import Path

import serial

from drivers.mbus.records import decode_records
from drivers.mbus_wired.bus import MbusBus, MeterSettings
from drivers.mbus_wired.meter_address import parse_meter_address
from drivers.mbus_wired.site import heat_payload, simulate_wired, water_payload
from drivers.readings import Sample
from drivers.transport.serial import SerialStream
from drivers.transport.stream import LineSettings
from gateway.config.loader import load_config


def test_registers_move_with_time() -> None:
    start, hour_later = decode_records(heat_payload(0)), decode_records(heat_payload(3600))
    assert (start[0].kind, start[0].value) == ("energy", Decimal(18_230_000))   # Wh, x10^3
    assert hour_later[0].value == Decimal(18_234_000)
    assert decode_records(water_payload(600, 1000))[0].value == Decimal("1.060")


async def test_the_demo_bus_loads_and_its_meters_read_exactly(tmp_path: Path) -> None:
    sim = simulate_wired(tmp_path, 5)
    try:
        config = tmp_path / "gateway.toml"
        config.write_text(textwrap.dedent(f"""
            gateway_id = "gw-test"
            [storage]
            path = "{tmp_path / 'gw.db'}"
        """) + sim.toml)
        loaded = load_config(config)
        meters = {m.id: m for m in loaded.meters}
        port = loaded.buses[0].port

        async def open_stream(baud: int) -> SerialStream:
            opened = serial.Serial(port, baud, parity="E", timeout=0)
            fd = os.dup(opened.fileno())
            opened.close()
            return SerialStream(fd, LineSettings(baud, 8, "E", 1), name=port, protocol="mbus")
        bus = MbusBus(open_stream, baud=loaded.buses[0].baudrate)
        try:
            heat = await bus.read_meter("heat", MeterSettings(parse_meter_address(
                meters["flat-3-heat"].address)))
            water = await bus.read_meter("water", MeterSettings(parse_meter_address(
                meters["flat-3-water"].address)))
        finally:
            await bus.close()
    finally:
        sim.stop()
    assert (sim.meters, sim.buses) == (3, 1)
    assert Sample("heat_energy", Decimal("18230.000"), "kWh") in heat
    assert Sample("flow_temperature", Decimal("65.2"), "C") in heat
    assert water == [Sample("volume", Decimal("124.456"), "m3")]
