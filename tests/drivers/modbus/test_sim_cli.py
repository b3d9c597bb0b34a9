"""`python -m drivers.modbus.sim --spec` prints where it listens, serves, records, stops on TERM."""

import asyncio
import json
import signal
import sys
from pathlib import Path

from drivers.modbus.master import ModbusBus, SerialBusSpec, TcpBusSpec
from drivers.modbus.profiles import get_profile
from tests.drivers.modbus.opener import board_opener

STARTUP_TIMEOUT_S = 20.0  # only bounds a failing test (interpreter start on a slow CI box)


async def test_cli_serves_rtu_and_tcp_and_records(tmp_path: Path) -> None:
    record = tmp_path / "served.jsonl"
    spec = {"record": str(record), "buses": [
        {"name": "rs485", "transport": "rtu", "pty_dir": str(tmp_path), "link_name": "ttySIM0",
         "slaves": [{"addresses": [1, 3], "profile": "eastron_sdm120", "seed": 5}]},
        {"name": "lan", "transport": "tcp", "port": 0,
         "slaves": [{"address": 4, "profile": "abb_b23"}]},
    ]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "drivers.modbus.sim", "--spec", str(tmp_path / "spec.json"),
        stdout=asyncio.subprocess.PIPE, cwd=Path(__file__).resolve().parents[3])
    try:
        assert proc.stdout is not None
        opened = json.loads(await asyncio.wait_for(proc.stdout.readline(), STARTUP_TIMEOUT_S))
        rtu, tcp = opened["buses"]
        assert rtu["path"] == str(tmp_path / "ttySIM0") and rtu["slaves"] == [1, 2, 3]
        serial_bus = ModbusBus(SerialBusSpec(rtu["path"], baudrate=2400),
                               open_fd=board_opener(rtu["path"], baudrate=2400))
        samples = await serial_bus.read_meter("m3", 3, get_profile("eastron_sdm120"), timeout_s=1)
        tcp_bus = ModbusBus(TcpBusSpec(tcp["host"], tcp["port"]))
        await tcp_bus.read_meter("m4", 4, get_profile("abb_b23"), timeout_s=1)
        await serial_bus.close()
        await tcp_bus.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), STARTUP_TIMEOUT_S) == 0
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    served = {}
    for line in lines:
        if line["slave"] == 3:
            served.update(line["values"])
    assert {s.quantity: str(s.value) for s in samples} == served
    assert {line["slave"] for line in lines} == {3, 4}
