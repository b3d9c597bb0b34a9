"""FC6 / FC16 write frames: PDUs round-trip, the RTU and MBAP frames cut where they end, the
echo is checked, exception codes become DeviceRejected; golden frames from the Modbus spec."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from drivers.errors import DeviceRejected, FrameError
from drivers.modbus import mbap
from drivers.modbus.link import rtu_pdu
from drivers.modbus.rtu import classify_rx, pdu_frame, rtu_frame_end, with_crc
from drivers.modbus.write import (
    MAX_WRITE_WORDS,
    WriteRequest,
    check_echo,
    echo_pdu,
    parse_write_pdu,
    write_pdu,
)

WORDS = st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=MAX_WRITE_WORDS)


@st.composite
def requests(draw: st.DrawFn) -> WriteRequest:
    words = tuple(draw(WORDS))
    address = draw(st.integers(0, 0x10000 - len(words)))
    return WriteRequest(address, words, multiple=draw(st.booleans()))


def test_golden_fc6_and_fc16_frames_of_the_modbus_spec() -> None:
    # Modbus application protocol v1.1b3, 6.6 and 6.12 (the PDU examples)
    assert write_pdu(WriteRequest(1, (0x0003,))).hex() == "0600010003"
    assert write_pdu(WriteRequest(1, (0x000A, 0x0102))).hex() == "100001000204000a0102"
    assert echo_pdu(WriteRequest(1, (0x000A, 0x0102))).hex() == "1000010002"
    # over RTU, slave 17, the CRC low byte first
    assert pdu_frame(17, write_pdu(WriteRequest(1, (0x0003,)))) == with_crc(
        bytes.fromhex("110600010003"))


@given(requests())
@example(WriteRequest(0, (0,)))
@example(WriteRequest(0xFFFF - 122, tuple(range(MAX_WRITE_WORDS)), multiple=True))
def test_a_write_pdu_parses_back_to_its_request(req: WriteRequest) -> None:
    parsed = parse_write_pdu(write_pdu(req))
    assert parsed.address == req.address and parsed.words == req.words
    assert parsed.function == req.function


@given(requests(), st.integers(1, 247))
def test_the_echo_is_taken_over_rtu_and_mbap(req: WriteRequest, slave: int) -> None:
    frame = pdu_frame(slave, echo_pdu(req))
    assert rtu_frame_end(frame[:-1]) is None and rtu_frame_end(frame + b"\x00") == len(frame)
    check_echo(rtu_pdu(frame, slave, req.function, "t"), req, "t")
    tcp = mbap.pdu_frame(7, slave, echo_pdu(req))
    assert mbap.mbap_frame_end(tcp) == len(tcp)
    _tid, unit, pdu = mbap.split_frame(tcp)
    check_echo(pdu, req, "t")
    assert unit == slave


@given(requests(), st.integers(1, 11))
def test_an_exception_answer_is_device_rejected_naming_the_code(req: WriteRequest,
                                                               code: int) -> None:
    with pytest.raises(DeviceRejected, match=f"exception {code}"):
        check_echo(bytes((req.function | 0x80, code)), req, "t")


@given(requests(), st.binary(min_size=1, max_size=8))
def test_any_other_answer_is_a_frame_error(req: WriteRequest, answer: bytes) -> None:
    if answer == echo_pdu(req) or answer[0] == req.function | 0x80:
        return  # the echo itself and exception answers are the cases above
    with pytest.raises(FrameError):
        check_echo(answer, req, "t")


def test_a_wrong_echo_value_is_refused() -> None:
    req = WriteRequest(2, (0x4170,))
    with pytest.raises(FrameError, match="not the echo"):
        check_echo(echo_pdu(WriteRequest(2, (0x4171,))), req, "t")


def test_a_write_answer_with_a_bad_crc_is_classified() -> None:
    frame = bytearray(pdu_frame(5, echo_pdu(WriteRequest(2, (1, 2)))))
    frame[-1] ^= 0xFF
    assert classify_rx(bytes(frame), 5, 16).value == "crc"
    assert classify_rx(bytes(frame[:5]), 5, 16).value == "half_frame"


@pytest.mark.parametrize("pdu", ["06000100", "0600010003ff", "10000100020300", "1000010000",
                                 "03000100"])
def test_malformed_write_pdus_are_frame_errors(pdu: str) -> None:
    with pytest.raises(FrameError):
        parse_write_pdu(bytes.fromhex(pdu))


@pytest.mark.parametrize(("address", "words"), [(0, ()), (0, (0,) * 124), (0xFFFF, (1, 2)),
                                                 (0, (0x10000,))])
def test_impossible_requests_are_refused(address: int, words: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        WriteRequest(address, words)
