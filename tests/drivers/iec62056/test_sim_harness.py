"""The IEC 62056-21 simulator on the one pty harness: the line's own faults reach the reader."""

from __future__ import annotations

import pytest

from drivers.errors import DeviceTimeout
from drivers.iec62056.datasets import DataSet, DataValue
from drivers.iec62056.framing import Identification
from drivers.iec62056.reader import Iec62056Bus
from drivers.iec62056.sim import MeterSim, SimMeter
from drivers.transport.sim import Direction, Fault, FaultKind

from .conftest import port_factory

TIMEOUT_S = 20.0  # a healthy read; bounds a failing test
FAIL_TIMEOUT_S = 3.0  # a read meant to fail: above the 2 s reaction timeout
OPTIONS = {"mode": "A"}


def mode_a_meter() -> SimMeter:
    """A mode A meter (baud character ' '): identification and readout at 300 baud, then idle,
    so a read after a failed one finds it listening."""
    sets = [DataSet("1.8.0", (DataValue("000123.456", "kWh"),))]
    return SimMeter(Identification("ABC", " ", None, "TEST01"), sets)


async def test_a_silent_line_times_out_and_the_next_read_succeeds() -> None:
    with MeterSim([mode_a_meter()]) as sim:
        bus = Iec62056Bus(port_factory(sim.port_path))
        sim.link.silence(Direction.TO_GATEWAY)
        with pytest.raises(DeviceTimeout):
            await bus.read("m1", "", OPTIONS, FAIL_TIMEOUT_S)
        sim.link.silence(Direction.TO_GATEWAY, on=False)
        result = await bus.read("m1", "", OPTIONS, TIMEOUT_S)
        await bus.close()
    assert [str(s.value) for s in result.samples] == ["123.456"]


async def test_a_corrupted_answer_is_not_taken_for_a_reading() -> None:
    with MeterSim([mode_a_meter()]) as sim:
        bus = Iec62056Bus(port_factory(sim.port_path))
        sim.link.inject(Direction.TO_GATEWAY, Fault(FaultKind.DROP))  # the identification
        with pytest.raises(DeviceTimeout):
            await bus.read("m1", "", OPTIONS, FAIL_TIMEOUT_S)
        await bus.close()
    assert "reads_ok" not in bus.counters("m1")
