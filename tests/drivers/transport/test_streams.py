"""The transport kit's streams: message reads over in-memory chunks, a pty, and TCP."""

import asyncio
import logging
import os
import termios
import tty
from collections.abc import Iterator

import pytest

from core.logs import TRACE, set_trace
from drivers.errors import DeviceTimeout, FrameError, PortUnavailable
from drivers.transport.memory import MemoryStream, split_every_way
from drivers.transport.serial import RtsDirection, SerialStream, take_descriptor
from drivers.transport.stream import MAX_MESSAGE_BYTES, LineSettings, fixed_length
from drivers.transport.tcp import TcpStream

WAIT_S = 2.0  # bounds a failing test only
SILENT_S = 0.01  # a read that is meant to time out


def line_end(buf: bytes) -> int | None:
    end = buf.find(b"\n")
    return None if end < 0 else end + 1


@pytest.mark.parametrize("chunks", split_every_way(b"hello\nrest"))
async def test_message_read_the_same_for_every_chunking(chunks: list[bytes]) -> None:
    stream = MemoryStream()
    stream.feed(*chunks)
    assert await stream.read_message(line_end, WAIT_S, WAIT_S, "line") == b"hello\n"
    assert stream.pending() == b"rest"


async def test_replies_follow_writes_and_writes_are_recorded() -> None:
    stream = MemoryStream()
    stream.reply_after_write([b"ab", b"c\n"])
    stream.reply_after_write([])  # the second request gets no answer
    await stream.write(b"q1")
    assert await stream.read_message(line_end, WAIT_S, WAIT_S, "line") == b"abc\n"
    await stream.write(b"q2")
    with pytest.raises(DeviceTimeout, match="received nothing"):
        await stream.read_message(line_end, SILENT_S, SILENT_S, "line")
    assert stream.writes == [b"q1", b"q2"]


async def test_cut_message_stays_pending_and_runaway_is_a_frame_error() -> None:
    stream = MemoryStream()
    stream.feed(b"half")
    with pytest.raises(DeviceTimeout, match="4 bytes"):
        await stream.read_message(line_end, SILENT_S, SILENT_S, "line")
    assert stream.discard_input() == b"half" and stream.pending() == b""
    stream.feed(b"x" * (MAX_MESSAGE_BYTES + 1))
    with pytest.raises(FrameError):
        await stream.read_message(line_end, SILENT_S, SILENT_S, "line")


async def test_unplugged_and_closed_streams_are_port_unavailable() -> None:
    stream = MemoryStream()
    stream.unplug()
    with pytest.raises(PortUnavailable):
        await stream.read_message(line_end, WAIT_S, WAIT_S, "line")
    with pytest.raises(PortUnavailable):
        await stream.write(b"x")
    closed = MemoryStream()
    closed.close()
    assert not closed.connected


async def test_echo_and_baud_switch_recorded() -> None:
    stream = MemoryStream(settings=LineSettings(300, 7, "E", 1))
    stream.feed(b"/?!\r\n")
    await stream.expect_echo(b"/?!\r\n", WAIT_S)
    stream.set_baud(300)  # unchanged: not re-applied
    stream.set_baud(9600)
    assert stream.line_changes == [LineSettings(9600, 7, "E", 1)]
    stream.feed(b"xx")
    with pytest.raises(FrameError):
        await stream.expect_echo(b"ab", WAIT_S)


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, int]]:
    master, slave = os.openpty()
    tty.setraw(slave)
    yield master, slave
    for fd in (master,):
        os.close(fd)


async def test_serial_stream_over_a_pty(pty_pair: tuple[int, int]) -> None:
    master, slave = pty_pair
    stream = SerialStream(slave, LineSettings(9600), name="pty", protocol="test")
    await stream.write(b"ping")
    assert os.read(master, 16) == b"ping"
    os.write(master, b"pong\n")
    assert await stream.read_message(line_end, WAIT_S, WAIT_S, "line") == b"pong\n"
    stream.set_line(LineSettings(2400, 7, "E", 1))
    # a pty keeps its own character size and parity (the kernel copies the hardware bits
    # back); the rate is what a mode C switch changes and what a pty keeps
    assert termios.tcgetattr(slave)[4] == termios.B2400
    assert stream.settings == LineSettings(2400, 7, "E", 1)
    stream.close()
    with pytest.raises(OSError):
        os.fstat(slave)  # the stream owned the descriptor


async def test_serial_stream_hang_up_is_port_unavailable() -> None:
    master, slave = os.openpty()
    stream = SerialStream(slave, LineSettings(9600), name="pty", protocol="test")
    os.close(master)  # the adapter vanished
    with pytest.raises(PortUnavailable):
        await stream.read_message(line_end, WAIT_S, WAIT_S, "line")
    stream.close()


def test_take_descriptor_duplicates_and_closes_a_port_object() -> None:
    master, slave = os.openpty()

    class Port:
        closed = False

        def fileno(self) -> int:
            return slave

        def close(self) -> None:
            self.closed = True
            os.close(slave)

    port = Port()
    fd = take_descriptor(port)
    assert port.closed and fd != slave and os.isatty(fd)
    assert take_descriptor(7) == 7
    os.close(fd), os.close(master)


async def test_tcp_stream_and_its_trace(caplog: pytest.LogCaptureFixture) -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readexactly(3) + b"\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    set_trace("tcptest", True)
    try:
        with caplog.at_level(TRACE):
            stream = await TcpStream.connect("127.0.0.1", port, protocol="tcptest",
                                             timeout_s=WAIT_S, meter="m1")
            await stream.write(b"abc")
            assert await stream.read_message(line_end, WAIT_S, WAIT_S, "line") == b"abc\n"
            with pytest.raises(PortUnavailable):  # the server hung up
                await stream.read_message(fixed_length(1), WAIT_S, WAIT_S, "more")
            stream.close()
    finally:
        set_trace("tcptest", False)
        server.close()
        await server.wait_closed()
    wire = [(r.direction, r.meter, r.hex) for r in caplog.records  # type: ignore[attr-defined]
            if r.name == "drivers.tcptest.wire"]
    assert wire[0] == ("tx", "m1", "616263") and wire[1][:2] == ("rx", "m1")
    assert all(r.levelno == TRACE for r in caplog.records if r.name.endswith(".wire"))
    assert logging.getLogger("drivers.tcptest.wire").level > TRACE


async def test_tcp_connect_refused_is_port_unavailable() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(PortUnavailable):
        await TcpStream.connect("127.0.0.1", port, protocol="test", timeout_s=WAIT_S)


def test_rts_direction_only_for_the_rts_mode() -> None:
    assert RtsDirection.from_rs485({}) is None
    assert RtsDirection.from_rs485({"enabled": True}) is None  # kernel mode: the driver does it
    assert RtsDirection.from_rs485({"enabled": True, "mode": "rts", "rts_level_for_tx": False,
                                    "delay_before_tx_ms": 2, "delay_before_rx_ms": 1}) \
        == RtsDirection(False, False, 0.002, 0.001)
