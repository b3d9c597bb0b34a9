"""`modbus.write` through the plugin's opened bus against the simulator over a real pty and
TCP: written, read back, audited; each refusal with its reason and its audit event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from board.interface import SerialSpec
from board.serial_ports import open_serial_fd
from core.clock import FakeClock
from core.errors import Refused
from drivers.errors import DeviceRejected
from drivers.modbus.plugin import PLUGIN
from drivers.modbus.sim import Misbehaviour, SimulatedBus, SlaveSpec
from drivers.modbus.write import WriteRequest
from drivers.plugin import Context, SerialParams

SLAVE = 3


@dataclass
class Bus:
    id: str = "rs485"
    kind: str = "serial"
    port: str = ""
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1
    rs485: dict[str, Any] = field(default_factory=dict)
    inter_request_gap_ms: int = 0
    host: str = "127.0.0.1"
    tcp_port: int = 502
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Meter:
    id: str = "sdm-3"
    bus: str = "rs485"
    protocol: str = "modbus"
    address: int | str = SLAVE
    poll_interval_s: int = 60
    profile: str = "eastron_sdm630"
    commodity: str = "electricity"
    timeout_ms: int = 500
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Opened:
    sim: SimulatedBus
    bus: Any
    events: list[tuple[str, str | None, dict[str, Any], str]]

    async def write(self, **args: Any) -> dict[str, Any]:
        handler = PLUGIN.server_commands["modbus.write"](lambda: [self.bus])
        result: dict[str, Any] = await handler(args, _Ctx())
        return result


@dataclass(frozen=True)
class _Ctx:
    command_id: str = "cmd-42"


def _open_serial(params: SerialParams) -> int:
    return open_serial_fd(SerialSpec(params.port, params.baudrate))


@pytest.fixture(params=["rtu", "tcp"])
async def opened(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opened]:
    events: list[tuple[str, str | None, dict[str, Any], str]] = []
    context = Context(open_serial=_open_serial, events=lambda *e: events.append(e),
                      clock=FakeClock(), data_dir=tmp_path)
    tcp = request.param == "tcp"
    async with SimulatedBus([SlaveSpec(SLAVE, "eastron_sdm630")], transport=request.param,
                            link_name=None if tcp else tmp_path / "ttySIM0") as sim:
        bus = Bus(kind="tcp", tcp_port=sim.tcp_port) if tcp else Bus(port=sim.gateway_path)
        assert PLUGIN.open_polled is not None
        opened_bus = PLUGIN.open_polled(bus, context)
        try:
            yield Opened(sim, opened_bus, events)
        finally:
            await opened_bus.close()


async def test_a_write_is_read_back_and_audited(opened: Opened) -> None:
    await opened.bus.read(Meter())
    result = await opened.write(meter="sdm-3", register="demand_period", value="15")
    assert result["read_back"] == "15" and result["old"] == "0" and result["new"] == "15"
    again = await opened.write(meter="sdm-3", register="2", value="30")
    assert again["old"] == "15" and again["register"] == "demand_period"
    kinds = [(kind, data["new"], data["command_id"]) for kind, _m, data, _s in opened.events]
    assert kinds == [("register_written", "15", "cmd-42"), ("register_written", "30", "cmd-42")]
    written = [r["written"] for r in opened.sim.records if "written" in r]
    assert [w["address"] for w in written] == [2, 2] and written[-1]["refused"] is None


async def test_a_write_between_polls_leaves_the_readings_whole(opened: Opened) -> None:
    await opened.bus.read(Meter())
    samples, result = await asyncio.gather(
        opened.bus.read(Meter()),
        opened.write(meter="sdm-3", register="relay_pulse_width", value="100"))
    assert result["read_back"] == "100"
    assert {s.quantity for s in samples} >= {"voltage_l1", "frequency"}
    assert opened.bus.counters("sdm-3")["garbage"] == 0


@pytest.mark.parametrize(("args", "reason"), [
    ({"meter": "sdm-3", "register": "demand_period", "value": 15}, "bad_args"),
    ({"meter": "sdm-3", "register": "demand_period", "value": "fifteen"}, "bad_args"),
    ({"meter": "sdm-3", "register": None, "value": "1"}, "bad_args"),
    ({"meter": "nobody", "register": "demand_period", "value": "15"}, "unknown_meter"),
    ({"meter": "sdm-3", "register": "voltage_l1", "value": "15"}, "not_writable"),
    ({"meter": "sdm-3", "register": "4", "value": "15"}, "not_writable"),
    ({"meter": "sdm-3", "register": "demand_period", "value": "61"}, "out_of_range"),
    ({"meter": "sdm-3", "register": "relay_pulse_width", "value": "59"}, "out_of_range"),
])
async def test_refusals_name_their_reason(opened: Opened, args: dict[str, Any],
                                          reason: str) -> None:
    await opened.bus.read(Meter())
    with pytest.raises(Refused) as refused:
        await opened.write(**args)
    assert refused.value.reason == reason
    assert not any("written" in r for r in opened.sim.records)  # nothing went to the meter
    if reason in ("not_writable", "out_of_range"):
        assert [(e[0], e[2]["reason"], e[2]["command_id"]) for e in opened.events] == \
            [("register_write_failed", reason, "cmd-42")]


async def test_a_meter_that_ignores_the_write_is_a_readback_mismatch(opened: Opened) -> None:
    await opened.bus.read(Meter())
    opened.sim.set_misbehaviour(SLAVE, Misbehaviour.IGNORE_WRITES)
    with pytest.raises(Refused) as refused:
        await opened.write(meter="sdm-3", register="demand_period", value="20")
    assert refused.value.reason == "readback_mismatch"
    kind, meter, data, _severity = opened.events[-1]
    assert (kind, meter, data["old"], data["new"], data["read_back"]) == \
        ("register_write_failed", "sdm-3", "0", "20", "0")


async def test_an_exception_answer_is_the_meter_refusing(opened: Opened) -> None:
    await opened.bus.read(Meter())
    opened.sim.set_misbehaviour(SLAVE, Misbehaviour.EXCEPTION)
    with pytest.raises(Refused) as refused:
        await opened.write(meter="sdm-3", register="demand_period", value="20")
    assert refused.value.reason == "meter_refused"
    assert opened.events[-1][2]["reason"] == "meter_refused"


@pytest.mark.parametrize(("req", "code"), [
    (WriteRequest(4, (0, 0), multiple=True), "exception 2 \\(illegal data address\\)"),
    (WriteRequest(2, (0x4170,)), "exception 2"),  # half of a float32
    (WriteRequest(2, (0x42F0, 0x0000)), "exception 3 \\(illegal data value\\)"),  # 120 min
])
async def test_the_meter_s_exception_codes_are_device_rejected(opened: Opened, req: WriteRequest,
                                                               code: str) -> None:
    with pytest.raises(DeviceRejected, match=code):
        await opened.bus.driver.write_registers("sdm-3", SLAVE, req, timeout_s=0.5)
    assert opened.sim.records[-1]["written"]["refused"] in ("ILLEGAL_ADDRESS", "ILLEGAL_VALUE")


async def test_a_silent_meter_is_not_answering(opened: Opened) -> None:
    await opened.bus.read(Meter())
    opened.sim.set_misbehaviour(SLAVE, Misbehaviour.SILENCE)
    with pytest.raises(Refused) as refused:
        await opened.write(meter="sdm-3", register="demand_period", value="20")
    assert refused.value.reason == "meter_not_answering"
    assert opened.events[-1][0] == "register_write_failed"
