"""The real session against the simulated meter: in process (SimStream), on a pty and on TCP;
password, clock, totals (absolute and increments, hourly and quarter-hourly), billing closures,
events, end of session, and the faults (silence, bad checksum, wrong password, link reset)."""

from __future__ import annotations

import datetime as dt

import pytest

from drivers.errors import DeviceTimeout
from drivers.iec102.master import LinkMaster, LinkResetNeeded
from drivers.iec102.session import (
    RECORD_HOURLY,
    RECORD_QUARTER_HOURLY,
    RequestRefused,
    Session,
    WrongPassword,
)
from drivers.iec102.sim import SimMeter, absolute, default_events
from drivers.iec102.simhost import PtySim, SimStream, TcpSim
from drivers.iec102.timetags import TimeA
from drivers.transport.serial import SerialStream
from drivers.transport.stream import LineSettings
from drivers.transport.tcp import TcpStream

ORIGIN = dt.datetime(2026, 10, 1)
NOW = dt.datetime(2026, 12, 6, 12, 5)
FAST = 0.1


def _meter(**kw: object) -> SimMeter:
    return SimMeter(1, 7, 1234, ORIGIN, lambda: NOW, events=default_events(ORIGIN),
                    **kw)  # type: ignore[arg-type]


def _session(meter: SimMeter) -> tuple[Session, SimStream]:
    stream = SimStream(meter)
    master = LinkMaster(stream, 1, answer_timeout_s=FAST, inter_byte_timeout_s=FAST)
    return Session(master, 7), stream


def _a(*args: int) -> TimeA:
    return TimeA.of(dt.datetime(*args))  # type: ignore[arg-type]


async def test_a_whole_session() -> None:
    session, _ = _session(_meter())
    await session.open(1234)
    clock = await session.read_clock()
    assert clock.wall() == NOW
    hourly = await session.read_totals(RECORD_HOURLY, _a(2026, 12, 6, 9), _a(2026, 12, 6, 12))
    assert [t.time.wall().hour for t in hourly] == [9, 10, 11, 12]
    quarters = (dt.datetime(2026, 12, 6, 12) - ORIGIN) // dt.timedelta(minutes=15)
    assert hourly[-1].totals[0].value == absolute(1, quarters)
    steps = await session.read_totals(RECORD_QUARTER_HOURLY, _a(2026, 12, 6, 11, 1),
                                      _a(2026, 12, 6, 12), incremental=True)
    assert len(steps) == 4
    assert sum(t.totals[0].value for t in steps) == absolute(1, quarters) - absolute(
        1, quarters - 4)
    current = await session.read_billing(1)
    assert [r.address for r in current] == [20, 21, 22]
    assert current[1].active.increment + current[2].active.increment == \
        current[0].active.increment
    closed = await session.read_billing(1, _a(2026, 10, 1), _a(2026, 12, 1))
    assert [r.period_end.wall() for r in closed if r.address == 20] == [
        dt.datetime(2026, 11, 1), dt.datetime(2026, 12, 1)]
    events = await session.read_events(52, TimeA.of(ORIGIN), TimeA.of(NOW))
    assert [(e.group, e.code, e.spi) for e in events][:2] == [(3, 1, True), (3, 1, False)]
    await session.close()


async def test_wrong_password_is_refused_and_nothing_is_read() -> None:
    session, _ = _session(_meter())
    with pytest.raises(WrongPassword):
        await session.open(999)
    with pytest.raises(RequestRefused):
        await session.read_clock()


async def test_unknown_record_is_refused() -> None:
    session, _ = _session(_meter())
    await session.open(1234)
    with pytest.raises(RequestRefused, match="unknown_record"):
        await session.read_totals(99, _a(2026, 12, 6, 9), _a(2026, 12, 6, 12))


async def test_bad_checksum_is_retried_with_the_same_fcb() -> None:
    meter = _meter(bad_checksum=2)
    session, stream = _session(meter)
    await session.open(1234)
    assert session.master.counts["checksum_errors"] == 2
    assert stream.writes[0] == stream.writes[1] == stream.writes[2]   # the reset, 3 times


async def test_link_reset_needed_mid_session() -> None:
    meter = _meter()
    session, _ = _session(meter)
    await session.open(1234)
    meter.need_reset = True
    with pytest.raises(LinkResetNeeded):
        await session.read_clock()
    assert (await session.read_clock()).wall() == NOW   # the link was reset first


async def test_silent_meter_times_out() -> None:
    session, _ = _session(_meter(silent=True))
    with pytest.raises(DeviceTimeout):
        await session.open(1234)


async def test_set_clock() -> None:
    meter = _meter()
    session, _ = _session(meter)
    await session.open(1234)
    await session.set_clock(NOW + dt.timedelta(seconds=30), summer=False)
    assert meter.clock_offset == dt.timedelta(seconds=30)


async def test_over_a_pty() -> None:
    with PtySim(_meter()) as sim:
        fd = _open_raw(sim.port_path)
        stream = SerialStream(fd, LineSettings(9600), name=sim.port_path, protocol="iec102")
        try:
            session = Session(LinkMaster(stream, 1), 7)
            await session.open(1234)
            assert len(await session.read_totals(RECORD_HOURLY, _a(2026, 12, 6, 10),
                                                 _a(2026, 12, 6, 12))) == 3
            await session.close()
        finally:
            stream.close()


async def test_over_tcp() -> None:
    server = await TcpSim.start(_meter())
    stream = await TcpStream.connect("127.0.0.1", server.port, protocol="iec102", timeout_s=5)
    try:
        session = Session(LinkMaster(stream, 1), 7)
        await session.open(1234)
        assert (await session.read_clock()).wall() == NOW
        await session.close()
    finally:
        stream.close()
        await server.close()


def _open_raw(path: str) -> int:
    import os
    import tty
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    return fd
