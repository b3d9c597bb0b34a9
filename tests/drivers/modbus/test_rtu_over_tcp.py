"""Modbus RTU over TCP (a serial device server such as a Moxa NPort passing RTU frames over a
raw socket): the master reads and writes through the simulator served with RTU framing on
TCP; the bus key `framing` is checked with the config; an answer split across TCP segments
and a late answer are handled like on a serial line."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from drivers.errors import DeviceTimeout
from drivers.modbus.master import ModbusBus, TcpBusSpec
from drivers.modbus.plan import ReadRequest
from drivers.modbus.profiles import get_profile
from drivers.modbus.rtu import pdu_frame
from drivers.modbus.sim import Misbehaviour, SimulatedBus, SlaveSpec
from drivers.modbus.write import WriteRequest
from gateway.config.loader import ConfigError, load_config
from tests.harness.eventually import eventually_async

TIMEOUT_S = 2.0  # healthy reads: generous so a loaded box never flakes


@pytest.fixture
async def rtu_tcp() -> AsyncIterator[tuple[SimulatedBus, ModbusBus]]:
    async with SimulatedBus([SlaveSpec(1, "eastron_sdm630"), SlaveSpec(4, "gavazzi_em340")],
                            transport="rtu_tcp") as sim:
        bus = ModbusBus(TcpBusSpec("127.0.0.1", sim.tcp_port, framing="rtu"))
        yield sim, bus
        await bus.close()


async def test_exact_values_read_with_rtu_frames_over_tcp(rtu_tcp) -> None:
    sim, bus = rtu_tcp
    for address, name in ((1, "eastron_sdm630"), (4, "gavazzi_em340")):
        samples = await bus.read_meter(name, address, get_profile(name), timeout_s=TIMEOUT_S)
        assert {s.quantity: str(s.value) for s in samples} == sim.served(address)
    assert bus.counters("eastron_sdm630")["crc"] == 0
    assert bus.name.endswith("(rtu)")


async def test_a_write_and_its_read_back_over_rtu_tcp(rtu_tcp) -> None:
    sim, bus = rtu_tcp
    period = get_profile("eastron_sdm630").writable[0]
    req = period.request(Decimal(30))
    await bus.write_registers("m1", 1, req, timeout_s=TIMEOUT_S)
    words = await bus.read_registers(1, ReadRequest(3, req.address, 2), TIMEOUT_S)
    assert tuple(words) == req.words and sim.slaves[1].held[2] == req.words[0]


async def test_a_silent_slave_times_out_and_the_next_read_is_clean(rtu_tcp) -> None:
    sim, bus = rtu_tcp
    sim.set_misbehaviour(4, Misbehaviour.SILENCE)
    with pytest.raises(DeviceTimeout):
        await bus.read_meter("em", 4, get_profile("gavazzi_em340"), timeout_s=0.3)
    samples = await bus.read_meter("sdm", 1, get_profile("eastron_sdm630"), timeout_s=TIMEOUT_S)
    assert samples


async def test_an_answer_split_across_segments_and_a_late_one_before_it() -> None:
    """A device server forwards what the line gave it, in as many TCP segments as its packing
    timer makes; bytes of an earlier answer wait in the socket before our request."""
    answer = pdu_frame(9, bytes.fromhex("0600020001"))
    handled: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"\x09\x03\x02")  # the tail of a late answer, before the request
        await writer.drain()
        await reader.readexactly(8)
        for i in range(0, len(answer), 3):
            writer.write(answer[i:i + 3])
            await writer.drain()
        await reader.read()  # until the master closes
        writer.close()
        handled.set_result(None)

    srv = await asyncio.start_server(server, "127.0.0.1", 0)
    bus = ModbusBus(TcpBusSpec("127.0.0.1", srv.sockets[0].getsockname()[1], framing="rtu"))
    try:
        stream = await bus._connected()  # connected first: the late bytes come before the request
        await eventually_async(lambda: stream.pending() == b"\x09\x03\x02", 10, "late bytes")
        await bus.write_registers("m9", 9, WriteRequest(2, (1,)), timeout_s=TIMEOUT_S)
    finally:
        await bus.close()
        await handled
        srv.close()
        await srv.wait_closed()


def _config(tmp_path: Path, bus: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(textwrap.dedent(f"""
        gateway_id = "gw"
        [storage]
        path = "{tmp_path / 'gw.db'}"
        [[bus]]
        id = "nport"
        {bus}
        [[meter]]
        id = "m1"
        bus = "nport"
        protocol = "modbus"
        address = 1
        profile = "eastron_sdm630"
    """))
    return path


def test_framing_is_a_checked_bus_key(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, 'kind = "tcp"\nhost = "10.0.0.5"\ntcp_port = 4001\n'
                                           'framing = "rtu"'))
    assert config.buses[0].options["framing"] == "rtu"
    with pytest.raises(ConfigError, match="framing"):
        load_config(_config(tmp_path, 'kind = "tcp"\nhost = "10.0.0.5"\nframing = "ascii"'))
    with pytest.raises(ConfigError, match="framing"):
        load_config(_config(tmp_path, 'port = "/dev/ttyUSB0"\nframing = "mbap"'))
