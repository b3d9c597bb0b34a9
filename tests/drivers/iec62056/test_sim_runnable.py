"""The runnable simulator: prints its port as one JSON line, serves a meter until SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from drivers.iec62056.reader import Iec62056Bus

from .conftest import READOUTS, port_factory


async def test_runnable_simulator_serves_two_addressed_meters() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "drivers.iec62056.sim", "--readout", f"{READOUTS}:4",
         "--address", "A1", "--readout", f"{READOUTS}:1", "--address", "B2"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        port = json.loads(process.stdout.readline())["port"]
        bus = Iec62056Bus(port_factory(port))
        first = await bus.read("a", "A1", {}, 30.0)
        second = await bus.read("b", "B2", {}, 30.0)
        await bus.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    assert first.identification is not None and first.identification.model == "ZMD3102400.B31"
    assert second.baud == 9600  # the Landis+Gyr ZMD120 offers '5'
    assert {s.quantity for s in second.samples} >= {"import_active_energy", "export_active_energy"}
