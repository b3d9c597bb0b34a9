"""The simulated bus on the pty harness, paced to the gateway's baud: a meter is read through
the real stream's timeouts, a meter slower than the answer timeout is lost (its answer
dropped when the gateway asks again), a meter at another baud hears nothing, and the module
entry serves a bus until SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from decimal import Decimal

import pytest
import serial

from drivers.errors import DriverError
from drivers.mbus_wired import link
from drivers.mbus_wired.bus import MbusBus, MeterSettings
from drivers.mbus_wired.sim import SimBus
from drivers.mbus_wired.simpty import BusSim, load_frames, meters_from_frames
from drivers.readings import Sample
from drivers.transport.serial import SerialStream
from drivers.transport.stream import LineSettings
from tests.corpus import CORPUS

FRAMES_JSON = CORPUS / "mbus" / "frames.json"
FRAMES = load_frames(FRAMES_JSON)
BAUD = 9600
START_TIMEOUT_S = 30.0   # bounds a broken start of the module, no speed requirement


def _bus(path: str, **kwargs: object) -> MbusBus:
    async def open_stream(baud: int) -> SerialStream:
        port = serial.Serial(path, baud, parity="E", timeout=0)
        fd = os.dup(port.fileno())
        port.close()
        return SerialStream(fd, LineSettings(baud, 8, "E", 1), name=path, protocol="mbus")
    return MbusBus(open_stream, baud=BAUD, **kwargs)  # type: ignore[arg-type]


async def test_paced_answers_slow_meters_and_other_bauds() -> None:
    meters = meters_from_frames([[FRAMES["libmbus/abb_f95"]]], 3, seed=14, primaries=True)
    meters[0].baud = meters[1].baud = BAUD
    meters[1].delay_s = link.answer_timeout_s(BAUD) * 3   # slow: answers after the timeout
    # meters[2] stays at 2400 baud: at 9600 it hears noise and says nothing
    with BusSim(SimBus(meters)) as sim:
        bus = _bus(sim.port_path, attempts=2)
        try:
            samples = await bus.read_meter("ok", MeterSettings(1))
            with pytest.raises(DriverError):
                await bus.read_meter("slow", MeterSettings(2))
            with pytest.raises(DriverError):
                await bus.read_meter("other-baud", MeterSettings(3))
        finally:
            await bus.close()
        dropped = sim.dropped_late
    assert Sample("volume", Decimal("0.0742"), "m3") in samples
    assert bus.counters("slow") == {"timeouts": 1}
    assert bus.counters("other-baud") == {"timeouts": 1}
    assert dropped >= 1   # the slow meter's first answer came too late and was talked over


async def test_the_module_entry_serves_a_bus_until_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "drivers.mbus_wired.simpty", "--frames", str(FRAMES_JSON),
         "--fixture", "libmbus/tecson", "--fixture",
         "libmbus/ELV-Elvaco-CMa10+libmbus/LGB_G350", "--meters", "2", "--primary",
         "--baud", str(BAUD), "--no-pace"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        started = json.loads(process.stdout.readline())
        bus = _bus(started["port"])
        try:
            tecson = await bus.read_meter("a", MeterSettings(1))
            await bus.read_meter("b", MeterSettings(2))
        finally:
            await bus.close()
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(START_TIMEOUT_S)
    assert [m["primary"] for m in started["meters"]] == [1, 2]
    assert Sample("volume", Decimal("45.60"), "m3") in tecson
    assert bus.counters("b")["telegrams"] == 2
    assert code == 0
