"""The Modbus RTU and TCP exchanges over the in-memory stream: golden frames split at every
point, and every way an answer can be unusable, classified and counted."""

import pytest

from drivers.errors import ChecksumError, DeviceRejected, DeviceTimeout, FrameError
from drivers.modbus.link import TcpTransactions, exchange_rtu
from drivers.modbus.plan import ReadRequest
from drivers.modbus.rtu import with_crc
from drivers.transport.memory import MemoryStream, split_every_way

# Simply Modbus's FC3 example: slave 17 (0x11), 3 holding registers from 0x006B.
REQUEST = bytes.fromhex("1103006b00037687")
RESPONSE = bytes.fromhex("110306ae415652434049ad")
WORDS = [0xAE41, 0x5652, 0x4340]
READ = ReadRequest(3, 0x6B, 3)
WAIT_S = 2.0  # a healthy answer: only bounds a failing test
SILENT_S = 0.01  # an answer that is meant not to come
# The same read over Modbus TCP: transaction 1, unit 17.
TCP_REQUEST = bytes.fromhex("000100000006" "11" "03006b0003")
TCP_RESPONSE = bytes.fromhex("000100000009" "11" "0306ae41565243 40".replace(" ", ""))


async def rtu(chunks: list[bytes], timeout_s: float = WAIT_S) -> tuple[list[int], MemoryStream]:
    stream = MemoryStream(protocol="modbus")
    stream.reply_after_write(chunks)
    return await exchange_rtu(stream, 0x11, READ, timeout_s, "m"), stream


@pytest.mark.parametrize("chunks", split_every_way(RESPONSE))
async def test_golden_rtu_response_at_every_split(chunks: list[bytes]) -> None:
    words, stream = await rtu(chunks)
    assert words == WORDS
    assert stream.writes == [REQUEST]


@pytest.mark.parametrize(("answer", "error", "counter"), [
    (b"", DeviceTimeout, "timeout"),
    (RESPONSE[:-1] + b"\x00", ChecksumError, "crc"),
    (with_crc(b"\x12" + RESPONSE[1:-2]), FrameError, "wrong_slave"),
    (RESPONSE[:6], FrameError, "half_frame"),
    (bytes(b * 37 + 11 & 0xFF for b in RESPONSE), FrameError, "garbage"),
    (with_crc(bytes.fromhex("110304ae415652")), FrameError, "garbage"),  # 2 registers, not 3
])
async def test_unusable_rtu_answers_are_classified(answer: bytes, error: type,
                                                   counter: str) -> None:
    with pytest.raises(error) as caught:
        await rtu([answer], SILENT_S)
    assert caught.value.counter == counter  # type: ignore[attr-defined]


async def test_rtu_exception_response_is_rejected() -> None:
    with pytest.raises(DeviceRejected, match="exception 2"):
        await rtu([with_crc(bytes.fromhex("118302"))])


async def test_late_bytes_of_an_earlier_request_are_dropped() -> None:
    stream = MemoryStream(protocol="modbus")
    stream.feed(RESPONSE[:5])  # the tail end of an answer that came after its timeout
    stream.reply_after_write([RESPONSE])
    assert await exchange_rtu(stream, 0x11, READ, WAIT_S, "m") == WORDS


@pytest.mark.parametrize("chunks", split_every_way(TCP_RESPONSE))
async def test_golden_tcp_response_at_every_split(chunks: list[bytes]) -> None:
    stream = MemoryStream(protocol="modbus")
    stream.reply_after_write(chunks)
    assert await TcpTransactions().exchange(stream, 0x11, READ, WAIT_S, "m") == WORDS
    assert stream.writes == [TCP_REQUEST]


async def test_tcp_skips_an_answer_to_an_earlier_transaction() -> None:
    stream = MemoryStream(protocol="modbus")
    tcp = TcpTransactions()
    stream.reply_after_write([])
    with pytest.raises(DeviceTimeout):
        await tcp.exchange(stream, 0x11, READ, SILENT_S, "m")
    late = TCP_RESPONSE  # transaction 1's answer arrives during transaction 2
    stream.reply_after_write([late, b"\x00\x02" + TCP_RESPONSE[2:]])
    assert await tcp.exchange(stream, 0x11, READ, WAIT_S, "m") == WORDS


async def test_tcp_out_of_step_stream_is_closed() -> None:
    stream = MemoryStream(protocol="modbus")
    stream.reply_after_write([b"\x00\x01\xff\xff\x00\x09\x11"])
    with pytest.raises(FrameError) as caught:
        await TcpTransactions().exchange(stream, 0x11, READ, WAIT_S, "m")
    assert caught.value.counter == "garbage"  # type: ignore[attr-defined]
    assert not stream.connected
