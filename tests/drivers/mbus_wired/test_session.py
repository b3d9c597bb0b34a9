"""The master over the transport kit's in-memory stream: golden answers split at every point,
echo, retries with the same FCB, multi-telegram readouts, refusals, broadcasts, baud switch."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from drivers.mbus_wired import link
from drivers.mbus_wired import requests as rq
from drivers.mbus_wired.address import SELECTED, SelectPattern
from drivers.mbus_wired.responses import FixedHeader, RspUd, build_answer
from drivers.mbus_wired.session import GarbledAnswer, MbusMaster, MeterRefused, NoAnswer
from drivers.mbus_wired.stream_link import ByteStreamLink
from drivers.transport.memory import MemoryStream, split_every_way
from drivers.transport.stream import LineSettings

CORPUS = Path(__file__).parents[2] / "corpus" / "mbus" / "frames.json"
FRAMES = {e["name"]: bytes.fromhex(e["frame_hex"]) for e in json.loads(CORPUS.read_text())}
TECSON = FRAMES["libmbus/tecson"]                      # 33 bytes, CI 72, address 0
ACK = b"\xe5"
FAST = LineSettings(baudrate=38400, parity="E")        # short timeouts for the silent cases


def _master(settings: LineSettings | None = None) -> tuple[MbusMaster, MemoryStream]:
    stream = MemoryStream(protocol="mbus", settings=settings)
    return MbusMaster(ByteStreamLink(stream)), stream


def _telegram(address: int, payload: bytes, access: int = 1) -> bytes:
    header = FixedHeader("12345678", 0x0477, 1, 7, access, 0, 0)
    return build_answer(RspUd(address, link.RSP_UD, 0x72, header, payload))


@pytest.mark.parametrize("chunks", split_every_way(TECSON))
async def test_read_golden_answer_split_at_every_point(chunks: list[bytes]) -> None:
    master, stream = _master()
    stream.reply_after_write([ACK])
    stream.reply_after_write(chunks)
    await master.reset(0)
    (telegram,) = await master.read(0)
    assert stream.writes == [bytes.fromhex("1040004016"), bytes.fromhex("107B007B16")]
    assert isinstance(telegram.header, FixedHeader) and telegram.header.id == "78563412"
    assert len(telegram.records) == 3


@pytest.mark.parametrize("chunks", split_every_way(bytes.fromhex("107B007B16") + TECSON)[::7])
async def test_echo_of_a_level_converter_is_stripped(chunks: list[bytes]) -> None:
    master, stream = _master()
    stream.reply_after_write(chunks)
    (telegram,) = await master.read(0)
    assert telegram.address == 0


async def test_garbled_answer_is_asked_again_with_the_same_fcb() -> None:
    master, stream = _master()
    bad = bytearray(TECSON)
    bad[-2] ^= 0xFF
    stream.reply_after_write([bytes(bad)])
    stream.reply_after_write([TECSON])
    stream.reply_after_write([TECSON])
    await master.read(0)
    await master.read(0)
    assert stream.writes[0] == stream.writes[1] == rq.build_request(rq.ReqUd2(0, True))
    assert stream.writes[2] == rq.build_request(rq.ReqUd2(0, False))   # toggled after success


async def test_three_attempts_then_no_answer() -> None:
    master, stream = _master(FAST)
    for _ in range(link.ATTEMPTS):
        stream.reply_after_write([])
    with pytest.raises(NoAnswer):
        await master.read(7)
    assert len(stream.writes) == link.ATTEMPTS and len(set(stream.writes)) == 1


async def test_persistent_garbage_is_a_garbled_answer() -> None:
    master, stream = _master(FAST)
    for _ in range(link.ATTEMPTS):
        stream.reply_after_write([b"\x68\x33\x00"])   # a collision's worth of bytes, then quiet
    with pytest.raises(GarbledAnswer, match="683300"):
        await master.read(7)


async def test_multi_telegram_readout_toggles_the_fcb() -> None:
    master, stream = _master()
    first = _telegram(5, bytes.fromhex("0413F40100001F"))
    second = _telegram(5, bytes.fromhex("0406E8030000"), access=2)
    stream.reply_after_write([first])
    stream.reply_after_write([second])
    telegrams = await master.read(5)
    assert [t.more_follow for t in telegrams] == [True, False]
    assert stream.writes == [rq.build_request(rq.ReqUd2(5, True)),
                             rq.build_request(rq.ReqUd2(5, False))]


async def test_answer_from_another_address_is_not_taken() -> None:
    master, stream = _master(FAST)
    for _ in range(link.ATTEMPTS):
        stream.reply_after_write([TECSON])   # address 0 answering a request to 9
    with pytest.raises(GarbledAnswer, match="address 0"):
        await master.read(9)


async def test_application_error_is_a_refusal_not_retried() -> None:
    master, stream = _master()
    stream.reply_after_write([bytes.fromhex("68040468080170098216")])
    with pytest.raises(MeterRefused, match="Too many readouts"):
        await master.read(1)
    assert len(stream.writes) == 1


async def test_broadcast_reset_waits_out_the_idle_gap() -> None:
    master, stream = _master(FAST)
    await master.reset(0xFF)
    assert stream.writes == [bytes.fromhex("1040FF3F16")]


async def test_select_clock_and_baud_switch() -> None:
    master, stream = _master(FAST)
    for _ in range(3):
        stream.reply_after_write([ACK])
    stream.reply_after_write([TECSON])
    await master.select(SelectPattern("78563412"))
    await master.send(rq.SetClock(SELECTED, True, datetime(2026, 12, 4, 19, 45)))
    await master.switch_baud(SELECTED, 9600)
    assert [(s.baudrate, s.parity) for s in stream.line_changes] == [(9600, "E")]
    assert stream.baud == 9600
    assert stream.writes[0][6] == rq.CI_SELECT and stream.writes[2][6] == 0xBD
    (telegram,) = await master.read(SELECTED)
    assert telegram.records


async def test_lenient_master_keeps_a_telegram_with_an_unreadable_tail() -> None:
    # libmbus/sen_pollutherm: record 3 has VIF 7B without its VIFE.
    frame = FRAMES["libmbus/sen_pollutherm"]
    for strict in (True, False):
        stream = MemoryStream(protocol="mbus", settings=FAST)
        master = MbusMaster(ByteStreamLink(stream), strict=strict)
        for _ in range(link.ATTEMPTS):
            stream.reply_after_write([frame])
        if strict:
            with pytest.raises(GarbledAnswer, match="cannot be decoded"):
                await master.read(frame[5])
            continue
        (telegram,) = await master.read(frame[5])
        kinds = [record.kind for record in telegram.records]
        assert kinds == ["energy", "volume", "unparsed"]
