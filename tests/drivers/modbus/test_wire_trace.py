"""'What did the meter send?': a read over the RTU simulator logs its bytes at TRACE, with the
meter and the direction, only while the modbus wire logger is switched on."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.logs import TRACE, set_trace
from drivers.modbus.master import ModbusBus, SerialBusSpec
from drivers.modbus.plan import plan_for
from drivers.modbus.profiles import get_profile
from drivers.modbus.rtu import read_request
from drivers.modbus.sim import SimulatedBus, SlaveSpec
from tests.drivers.modbus.opener import board_opener

TIMEOUT_S = 2.0  # a healthy read; bounds a failing test
WIRE = "drivers.modbus.wire"


async def test_trace_lines_only_when_switched_on(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    profile = get_profile("eastron_sdm120")
    async with SimulatedBus([SlaveSpec(5, "eastron_sdm120")], link_name=tmp_path / "tty") as sim:
        bus = ModbusBus(SerialBusSpec(sim.gateway_path), open_fd=board_opener(sim.gateway_path))
        try:
            with caplog.at_level(TRACE):
                await bus.read_meter("shop-5", 5, profile, timeout_s=TIMEOUT_S)
                assert not [r for r in caplog.records if r.name == WIRE]  # off by default
                set_trace("modbus", True)
                await bus.read_meter("shop-5", 5, profile, timeout_s=TIMEOUT_S)
        finally:
            set_trace("modbus", False)
            await bus.close()
    wire = [r for r in caplog.records if r.name == WIRE]
    first = plan_for(profile).requests[0]
    sent = [r.hex for r in wire if r.direction == "tx"]  # type: ignore[attr-defined]
    assert sent[0] == read_request(5, first.function, first.address, first.count).hex()
    assert any(r.direction == "rx" for r in wire)  # type: ignore[attr-defined]
    assert {r.meter for r in wire} == {"shop-5"}  # type: ignore[attr-defined]
    assert {r.levelname for r in wire} == {"TRACE"}
