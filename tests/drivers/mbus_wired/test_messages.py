"""Wired M-Bus messages: golden request bytes, answers, FCB / FCV, timing constants, echo, and
parse(build(x)) == x for requests, answers and select patterns."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import ChecksumError, FrameError
from drivers.mbus.values import datetime_f
from drivers.mbus_wired import link
from drivers.mbus_wired import requests as rq
from drivers.mbus_wired.address import (
    SecondaryAddress,
    SelectPattern,
    decode_pattern,
    manufacturer_code,
    manufacturer_text,
)
from drivers.mbus_wired.responses import (
    Ack,
    AppError,
    ApplicationErrorFrame,
    FixedHeader,
    RspUd,
    build_answer,
    decode_rsp_ud,
    parse_answer,
)

# pyMeterBus tests/test_serial.py `reply`: a select of id 00000001, manufacturer DADA, ...
SELECT_GOLDEN = bytes.fromhex("680B0B6873FD5201000000DADAFA1B8C16")
# libmbus unsupported-frames/manual_frame4: set primary address 8 by broadcast to 254.
SET_ADDRESS_GOLDEN = bytes.fromhex("6806066853FE51017A082516")


def test_golden_requests() -> None:
    assert rq.build_request(rq.SndNke(1)) == bytes.fromhex("1040014116")
    assert rq.build_request(rq.ReqUd2(1, False)) == bytes.fromhex("105B015C16")
    assert rq.build_request(rq.ReqUd2(1, True)) == bytes.fromhex("107B017C16")
    pattern = SelectPattern("00000001", 0xDADA, 0xFA, 0x1B)
    assert rq.parse_request(SELECT_GOLDEN) == rq.SelectSecondary(pattern, True)
    assert rq.build_request(rq.SelectSecondary(pattern, True)) == SELECT_GOLDEN
    assert rq.parse_request(SET_ADDRESS_GOLDEN) == rq.SetPrimaryAddress(0xFE, False, 8)
    # Application reset (CI 50) as a control frame, baud switch to 9600 (CI BD).
    assert rq.build_request(rq.ApplicationReset(5, False)) == bytes.fromhex("68030368530550A816")
    assert rq.build_request(rq.SwitchBaud(5, False, 9600))[6] == 0xBD


def test_clock_sync_is_a_type_f_record() -> None:
    request = rq.SetClock(3, True, datetime(2026, 12, 4, 19, 30))
    wire = rq.build_request(request)
    assert wire[6:9] == bytes([rq.CI_DATA, 0x04, 0x6D])
    assert wire[9:13] == bytes([30, 19, 4 | (26 & 7) << 5, 12 | (26 >> 3) << 4])
    assert rq.parse_request(wire) == request
    with pytest.raises(ValueError):
        rq.SetClock(3, True, datetime(2026, 12, 4, 19, 30, 5))


def test_requests_refused() -> None:
    with pytest.raises(FrameError, match="no master frame"):
        rq.parse_request(bytes.fromhex("10080B1316"))       # pyMeterBus short frame, C = 08
    with pytest.raises(FrameError, match="answer"):
        rq.parse_request(b"\xe5")
    with pytest.raises(FrameError, match="no digit"):
        decode_pattern(bytes.fromhex("A1000000FFFFFFFF"))


def test_manufacturer_codes() -> None:
    assert manufacturer_code("ACW") == 0x0477 and manufacturer_text(0x0477) == "ACW"
    with pytest.raises(ValueError):
        manufacturer_code("acw")


def test_select_pattern_matching() -> None:
    meter = SecondaryAddress("12345678", manufacturer_code("ABB"), 2, 7)
    assert SelectPattern().matches(meter)
    assert SelectPattern("1234FFFF").matches(meter)
    assert not SelectPattern("1235FFFF").matches(meter)
    assert SelectPattern(manufacturer=manufacturer_code("ABB"), medium=7).matches(meter)
    assert not SelectPattern(medium=4).matches(meter)
    assert SelectPattern("FFFFFFFF").with_digit(0, 1).id == "1FFFFFFF"
    assert meter.text() == "12345678.ABB.02.07"


def test_fcb_toggles_per_address_after_an_answer() -> None:
    state = link.FcbState()
    assert state.current(1) is True          # after SND_NKE the first FCV=1 frame has FCB=1
    state.confirmed(1)
    assert state.current(1) is False and state.current(2) is True
    state.reset(1)
    assert state.current(1) is True
    assert link.master_control(link.REQ_UD2, True) == 0x7B
    assert link.SND_NKE & link.FCV == 0 and link.REQ_UD2 & link.FCV


def test_timing_constants_follow_the_baud() -> None:
    assert link.answer_timeout_s(2400) == pytest.approx(330 / 2400 + 0.05)
    assert link.answer_timeout_s(300) == pytest.approx(1.1 + 0.05)
    assert link.broadcast_idle_s(9600) == pytest.approx(330 / 9600 + 0.05)
    assert link.wire_time_s(17, 2400) == pytest.approx(17 * 11 / 2400)


def test_echo_is_stripped_whole_or_while_arriving() -> None:
    sent = rq.build_request(rq.ReqUd2(1, True))
    assert link.strip_echo(sent + b"\xe5", sent) == b"\xe5"
    assert link.strip_echo(sent[:3], sent) is None
    assert link.strip_echo(b"\xe5", sent) == b"\xe5"
    finder = link.AnswerFinder(sent)
    assert [finder(sent[:n]) for n in range(1, 6)] == [None] * 5
    assert finder(sent + b"\xe5") == 6


def test_answers() -> None:
    assert parse_answer(b"\xe5") == Ack()
    error = parse_answer(bytes.fromhex("68040468080170098216"))
    assert error == AppError(1, 0x08, 9) and error.text == "Too many readouts"
    with pytest.raises(ApplicationErrorFrame, match="Too many readouts"):
        decode_rsp_ud(bytes.fromhex("68040468080170098216"))
    with pytest.raises(ChecksumError):
        decode_rsp_ud(bytes.fromhex("68040468080170098316"))
    with pytest.raises(FrameError, match="no RSP_UD"):
        decode_rsp_ud(SET_ADDRESS_GOLDEN)


_byte = st.integers(0, 255)
_fcb = st.booleans()
_primary = st.integers(0, 255)
_patterns = st.builds(SelectPattern, st.text("0123456789F", min_size=8, max_size=8),
                      st.integers(0, 0xFFFF), _byte, _byte)
_moments = st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)).map(
    lambda d: d.replace(second=0, microsecond=0))
_requests = st.one_of(
    st.builds(rq.SndNke, _primary), st.builds(rq.ReqUd2, _primary, _fcb),
    st.builds(rq.SelectSecondary, _patterns, _fcb),
    st.builds(rq.ApplicationReset, _primary, _fcb, st.none() | _byte),
    st.builds(rq.SwitchBaud, _primary, _fcb, st.sampled_from(link.BAUD_RATES)),
    st.builds(rq.SetClock, _primary, _fcb, _moments),
    st.builds(rq.SetPrimaryAddress, _primary, _fcb, _byte),
    st.builds(rq.SndUd, _primary, _fcb, st.integers(0, 0x4F), st.binary(max_size=40)),
)


@given(_requests)
def test_request_round_trip(request: rq.Request) -> None:
    assert rq.parse_request(rq.build_request(request)) == request


@given(_patterns)
def test_pattern_round_trip(pattern: SelectPattern) -> None:
    assert decode_pattern(pattern.encode()) == pattern


_headers = st.builds(FixedHeader, st.integers(0, 10**8 - 1).map(lambda n: f"{n:08d}"),
                     st.integers(0, 0xFFFF), _byte, _byte, _byte, _byte, st.integers(0, 0xFFFF))
# Record payloads the shared encoder writes: 8/16/32-bit energy, volume and BCD values.
_records = st.lists(st.sampled_from([bytes.fromhex(h) for h in (
    "0406E8030000", "0413F4010000", "02FD170400", "0C1478563412", "426C1F01", "01FD1B02",
    "841006D2040000", "2F")]), max_size=6)


@given(_primary, _headers, _records)
def test_rsp_ud_round_trip(address: int, header: FixedHeader, records: list[bytes]) -> None:
    answer = RspUd(address, link.RSP_UD, 0x72, header, b"".join(records))
    decoded = decode_rsp_ud(build_answer(answer))
    assert decoded == answer
    assert not decoded.more_follow
    assert len(decoded.records) == sum(record != b"/" for record in records)   # 2F: filler


def test_more_records_follow() -> None:
    header = FixedHeader("12345678", 0x0477, 1, 7, 1, 0, 0)
    answer = RspUd(1, link.RSP_UD, 0x72, header, bytes.fromhex("0413F40100001F"))
    assert decode_rsp_ud(build_answer(answer)).more_follow


_answers = st.one_of(
    st.just(Ack()),
    st.builds(AppError, _primary, st.sampled_from((0x08, 0x18, 0x28, 0x38)), st.none() | _byte),
    st.builds(RspUd, _primary, st.sampled_from((0x08, 0x18, 0x28, 0x38)), st.just(0x72),
              _headers, _records.map(b"".join)),
)


@given(_answers)
def test_answer_round_trip(answer: Ack | AppError | RspUd) -> None:
    assert parse_answer(build_answer(answer)) == answer


@given(_moments)
def test_clock_record_reads_back_with_the_shared_decoder(moment: datetime) -> None:
    assert datetime_f(rq.encode_type_f(moment)) == moment.isoformat(timespec="minutes")
