"""The 102 link layer: golden request frames, answers, the FCB rule, and the master over the
in-memory stream (answers split at every point, retries with the same FCB, NACK, E5)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers import ft12
from drivers.errors import ChecksumError, DeviceTimeout, FrameError
from drivers.iec102 import link
from drivers.iec102.master import LinkMaster, LinkResetNeeded, LinkState
from drivers.transport.memory import MemoryStream, split_every_way

# Reset of remote link, request status, class 2 requests and the fixed-frame ACK for link
# address 1, laid out as gisce/iec870ree's base_asdu.py builds them (C, 2-octet address LE).
RESET = bytes.fromhex("1040010041 16".replace(" ", ""))
STATUS = bytes.fromhex("104901004A16")
CLASS2_FCB1 = bytes.fromhex("107B01007C16")
CLASS2_FCB0 = bytes.fromhex("105B01005C16")
ACK = bytes.fromhex("100001000116")
NACK = bytes.fromhex("100101000216")
LINK_STATUS = bytes.fromhex("100B01000C16")
FAST = 0.05


def test_golden_requests() -> None:
    assert link.reset_remote_link(1) == RESET
    assert link.request_status(1) == STATUS
    assert link.request_class(1, 2, True) == CLASS2_FCB1
    assert link.request_class(1, 2, False) == CLASS2_FCB0
    assert link.request_class(0x1234, 1, True) == bytes.fromhex("107A3412C016")


def test_send_confirm_carries_the_asdu_after_c_and_address() -> None:
    asdu = bytes.fromhex("B70106010000 07000000".replace(" ", ""))
    frame = link.send_confirm(1, asdu, True)
    assert frame == bytes.fromhex("680D0D687301 00B70106010000070000003A16".replace(" ", ""))


def test_answers() -> None:
    assert link.answer_of(ft12.parse_frame(ACK, 2), 1) == link.Ack()
    assert link.answer_of(ft12.parse_frame(b"\xe5", 2)) == link.Ack(single_char=True)
    assert link.answer_of(ft12.parse_frame(NACK, 2)) == link.Nack()
    assert link.answer_of(ft12.parse_frame(LINK_STATUS, 2)) == link.LinkStatus()
    with pytest.raises(FrameError, match="master frame"):
        link.answer_of(ft12.parse_frame(RESET, 2))
    with pytest.raises(FrameError, match="link address 1, asked 2"):
        link.answer_of(ft12.parse_frame(ACK, 2), 2)


answers = st.one_of(
    st.builds(link.Ack, st.booleans()),
    st.builds(link.Nack, st.booleans(), st.booleans()),
    st.builds(link.NoData, st.booleans()),
    st.builds(link.LinkStatus, st.booleans(), st.booleans()),
    st.builds(link.UserData, st.binary(min_size=2, max_size=200), st.booleans(), st.booleans()))


@given(answers, st.integers(0, 0xFFFF))
def test_answer_round_trip(answer: link.Answer, address: int) -> None:
    wire = link.build_answer(answer, address)
    assert link.answer_of(ft12.parse_frame(wire, 2), address) == answer


@given(st.integers(0, 0xFF))
def test_control_round_trip(value: int) -> None:
    assert link.Control.of(value).byte() == value & 0x7F


def test_fcb_starts_at_one_after_reset_and_toggles() -> None:
    state = link.FcbState()
    assert state.current
    state.confirmed()
    assert not state.current
    state.reset()
    assert state.current


def _master(attempts: int = link.ATTEMPTS) -> tuple[LinkMaster, MemoryStream]:
    stream = MemoryStream(protocol="iec102")
    return LinkMaster(stream, 1, answer_timeout_s=FAST, inter_byte_timeout_s=FAST,
                      attempts=attempts), stream


@pytest.mark.parametrize("chunks", split_every_way(ACK))
async def test_reset_reads_an_ack_split_anywhere(chunks: list[bytes]) -> None:
    master, stream = _master()
    stream.reply_after_write(chunks)
    await master.reset()
    assert master.state is LinkState.UP and stream.writes == [RESET]


async def test_poll_resets_first_then_keeps_fcb_on_retry_and_toggles_after() -> None:
    master, stream = _master()
    stream.reply_after_write([ACK])          # reset
    stream.reply_after_write([])             # silence: retried with the same FCB
    stream.reply_after_write([ACK[:-2] + b"\x00\x16"])   # bad checksum: again the same FCB
    stream.reply_after_write([b"\xe5"])      # no data
    stream.reply_after_write([bytes.fromhex("100901000A16")])   # NO_DATA, FCB toggled
    assert await master.poll() is None
    assert await master.poll() is None
    assert stream.writes == [RESET, CLASS2_FCB1, CLASS2_FCB1, CLASS2_FCB1, CLASS2_FCB0]
    assert master.counts["timeouts"] == 1 and master.counts["checksum_errors"] == 1


async def test_user_data_answer_gives_the_asdu() -> None:
    master, stream = _master()
    asdu = bytes.fromhex("B70107010000 07000000".replace(" ", ""))
    stream.reply_after_write([ACK])
    stream.reply_after_write([link.build_answer(link.UserData(asdu, acd=True), 1)])
    assert await master.poll() == asdu
    assert master.class1_pending


async def test_nack_puts_the_link_down_and_the_next_request_resets() -> None:
    master, stream = _master()
    stream.reply_after_write([ACK])
    stream.reply_after_write([NACK])
    with pytest.raises(LinkResetNeeded):
        await master.send(bytes.fromhex("BB0006010000"))
    assert master.state is LinkState.DOWN
    stream.reply_after_write([ACK])
    stream.reply_after_write([ACK])
    await master.send(bytes.fromhex("BB0006010000"))
    assert stream.writes[2] == RESET


async def test_silence_after_all_attempts_is_a_timeout() -> None:
    master, stream = _master(attempts=2)
    with pytest.raises(DeviceTimeout):
        await master.reset()
    assert len(stream.writes) == 2 and master.state is LinkState.DOWN


async def test_bad_checksum_every_time_is_a_checksum_error() -> None:
    master, stream = _master(attempts=2)
    for _ in range(2):
        stream.reply_after_write([LINK_STATUS[:-2] + b"\x99\x16"])
    with pytest.raises(ChecksumError):
        await master.status()


async def test_status() -> None:
    master, stream = _master()
    stream.reply_after_write([LINK_STATUS])
    assert await master.status() == link.LinkStatus()
