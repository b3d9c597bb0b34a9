"""The master against the simulator over real ptys (RTU) and TCP: exact values and failures."""

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from drivers.errors import (
    ChecksumError,
    DeviceRejected,
    DeviceTimeout,
    FrameError,
    PortUnavailable,
)
from drivers.modbus.master import BACKOFF_FIRST_S, ModbusBus, SerialBusSpec, TcpBusSpec
from drivers.modbus.profiles import get_profile, profile_names
from drivers.modbus.sim import Misbehaviour, SimulatedBus, SlaveSpec
from tests.drivers.modbus.opener import board_opener

TIMEOUT_S = 2.0  # healthy reads: generous so a loaded CI box never flakes
FAIL_TIMEOUT_S = 0.3  # reads expected to fail wait this long per attempt
SCAN_TIMEOUT_S = 1.0  # present slaves must answer within it even on a loaded box


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def as_strings(samples) -> dict[str, str]:
    return {s.quantity: str(s.value) for s in samples}


@pytest.fixture
async def rtu(tmp_path: Path) -> AsyncIterator[tuple[SimulatedBus, ModbusBus, FakeClock]]:
    slaves = [SlaveSpec(i + 1, name, seed=3) for i, name in enumerate(profile_names())]
    async with SimulatedBus(slaves, link_name=tmp_path / "ttySIM0") as sim:
        clock = FakeClock()
        bus = ModbusBus(SerialBusSpec(sim.gateway_path), open_fd=board_opener(sim.gateway_path),
                        clock=clock)
        yield sim, bus, clock
        await bus.close()


async def test_every_profile_reads_exact_values_over_rtu(rtu) -> None:
    sim, bus, _ = rtu
    for address, name in enumerate(profile_names(), start=1):
        samples = await bus.read_meter(name, address, get_profile(name), timeout_s=TIMEOUT_S)
        assert as_strings(samples) == sim.served(address), name
        assert {s.quantity for s in samples} == set(get_profile(name).quantities)
        assert all(isinstance(s.value, Decimal) for s in samples)
    assert sim.records[-1]["slave"] == len(profile_names())


async def test_tcp_reads_exact_values_and_scan() -> None:
    async with SimulatedBus([SlaveSpec(7, "abb_b23"), SlaveSpec(9, "schneider_iem3155")],
                            transport="tcp") as sim:
        bus = ModbusBus(TcpBusSpec("127.0.0.1", sim.tcp_port))
        for address, name in ((7, "abb_b23"), (9, "schneider_iem3155")):
            samples = await bus.read_meter(name, address, get_profile(name), timeout_s=TIMEOUT_S)
            assert as_strings(samples) == sim.served(address)
        assert await bus.scan([6, 7, 8, 9], timeout_s=SCAN_TIMEOUT_S) == [7, 9]
        await bus.close()


async def test_scan_over_rtu_finds_present_slaves(rtu) -> None:
    _, bus, _ = rtu
    assert await bus.scan([1, 2, 40], timeout_s=SCAN_TIMEOUT_S) == [1, 2]


@pytest.mark.parametrize(("fault", "error", "counter"), [
    (Misbehaviour.SILENCE, DeviceTimeout, "timeout"),
    (Misbehaviour.GARBAGE, FrameError, "garbage"),
    (Misbehaviour.WRONG_SLAVE, FrameError, "wrong_slave"),
    (Misbehaviour.CRC_ERROR, ChecksumError, "crc"),
    (Misbehaviour.HALF_FRAME, FrameError, "half_frame"),
    (Misbehaviour.EXCEPTION, DeviceRejected, "exception"),
])
async def test_misbehaviour_counted_while_neighbour_reads(rtu, fault, error, counter) -> None:
    sim, bus, clock = rtu
    bad, good = get_profile("eastron_sdm630"), get_profile("gavazzi_em340")
    bad_addr, good_addr = profile_names().index("eastron_sdm630") + 1, \
        profile_names().index("gavazzi_em340") + 1
    sim.set_misbehaviour(bad_addr, fault)
    with pytest.raises(error):
        await bus.read_meter("bad", bad_addr, bad, timeout_s=FAIL_TIMEOUT_S)
    samples = await bus.read_meter("good", good_addr, good, timeout_s=TIMEOUT_S)
    assert as_strings(samples) == sim.served(good_addr)
    counts = bus.counters("bad")
    assert counts[counter] >= 1
    assert sum(counts[k] for k in ("timeout", "garbage", "wrong_slave", "crc", "half_frame",
                                   "exception")) == counts[counter]
    assert bus.counters("good")[counter] == 0
    sim.set_misbehaviour(bad_addr, Misbehaviour.NONE)
    clock.now += 1000
    assert as_strings(await bus.read_meter("bad", bad_addr, bad, timeout_s=TIMEOUT_S)) \
        == sim.served(bad_addr)


async def test_backoff_skips_dead_meter_and_success_resets(rtu) -> None:
    sim, bus, clock = rtu
    profile = get_profile("eastron_sdm120")
    address = profile_names().index("eastron_sdm120") + 1
    sim.set_misbehaviour(address, Misbehaviour.SILENCE)
    with pytest.raises(DeviceTimeout):
        await bus.read_meter("m", address, profile, timeout_s=FAIL_TIMEOUT_S)
    sent = bus.counters("m")["requests"]
    with pytest.raises(DeviceTimeout, match="backoff"):
        await bus.read_meter("m", address, profile, timeout_s=FAIL_TIMEOUT_S)
    assert bus.counters("m")["requests"] == sent  # skipped: nothing went on the bus
    assert bus.counters("m")["skipped_backoff"] == 1
    clock.now += BACKOFF_FIRST_S  # first backoff over; the second failure doubles it
    with pytest.raises(DeviceTimeout):
        await bus.read_meter("m", address, profile, timeout_s=FAIL_TIMEOUT_S)
    clock.now += BACKOFF_FIRST_S
    with pytest.raises(DeviceTimeout, match="backoff"):
        await bus.read_meter("m", address, profile, timeout_s=FAIL_TIMEOUT_S)
    sim.set_misbehaviour(address, Misbehaviour.NONE)
    clock.now += 2 * BACKOFF_FIRST_S
    await bus.read_meter("m", address, profile, timeout_s=TIMEOUT_S)
    with pytest.raises(DeviceTimeout):  # reset: the next failure is read, not skipped
        sim.set_misbehaviour(address, Misbehaviour.SILENCE)
        await bus.read_meter("m", address, profile, timeout_s=FAIL_TIMEOUT_S)
    assert bus.counters("m")["skipped_backoff"] == 2


async def test_unplug_reports_port_unavailable_then_recovers(rtu) -> None:
    sim, bus, _ = rtu
    profile = get_profile("eastron_sdm630")
    address = profile_names().index("eastron_sdm630") + 1
    await bus.read_meter("m", address, profile, timeout_s=TIMEOUT_S)
    assert sim.link is not None
    sim.link.unplug()
    for _ in range(2):  # no clock step: an unplugged port puts no meter in backoff
        with pytest.raises(PortUnavailable):
            await bus.read_meter("m", address, profile, timeout_s=FAIL_TIMEOUT_S)
    sim.link.replug()
    samples = await bus.read_meter("m", address, profile, timeout_s=TIMEOUT_S)
    assert as_strings(samples) == sim.served(address)
    assert bus.counters("m")["port_unavailable"] == 2


async def test_secondary_side_values_scaled_by_ratios(tmp_path: Path) -> None:
    from drivers.modbus.decode import apply_ratio
    assert apply_ratio(Decimal("1.25"), "ct", Decimal(40), Decimal(1)) == Decimal("50.00")
    assert apply_ratio(Decimal("2"), "ct*vt", Decimal(40), Decimal(100)) == Decimal("8000")
    assert apply_ratio(Decimal("2"), None, Decimal(40), Decimal(100)) == Decimal("2")
