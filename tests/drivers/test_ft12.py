"""FT1.2 framing: golden frames, byte-by-byte feeding, garbage, bad checksums, stray start
bytes, 1- and 2-byte addresses, and build/parse round trips."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers import ft12
from drivers.errors import ChecksumError, FrameError

REQ_UD2 = bytes.fromhex("105B015C16")
SND_NKE = bytes.fromhex("1040014116")
APP_ERROR = bytes.fromhex("680303680801707916")     # libmbus error-frames/error (CI 0x70)
RSP_UD = bytes.fromhex("680F0F680801727856341224400107550000005016")


def test_golden_frames_parse() -> None:
    assert ft12.parse_frame(b"\xe5") == ft12.SingleChar()
    assert ft12.parse_frame(REQ_UD2) == ft12.ShortFrame(0x5B, 1)
    assert ft12.parse_frame(SND_NKE) == ft12.ShortFrame(0x40, 1)
    assert ft12.parse_frame(APP_ERROR) == ft12.ControlFrame(0x08, 1, 0x70)
    frame = ft12.parse_frame(RSP_UD)
    assert frame == ft12.LongFrame(0x08, 1, 0x72, bytes.fromhex("785634122440010755000000"))


def _fed_byte_by_byte(data: bytes) -> list[ft12.Outcome]:
    return [ft12.find_frame(data[:end]) for end in range(1, len(data) + 1)]


@pytest.mark.parametrize("data", [REQ_UD2, APP_ERROR, RSP_UD])
def test_byte_by_byte_needs_more_until_the_last_byte(data: bytes) -> None:
    outcomes = _fed_byte_by_byte(data)
    assert all(isinstance(o, ft12.NeedMore) for o in outcomes[:-1])
    assert isinstance(outcomes[-1], ft12.Found) and outcomes[-1].size == len(data)


def test_need_more_and_invalid_are_different_outcomes() -> None:
    assert ft12.find_frame(b"") == ft12.NeedMore(1)
    assert ft12.find_frame(RSP_UD[:4]) == ft12.NeedMore(len(RSP_UD))
    assert isinstance(ft12.find_frame(b"\x68\x05\x06"), ft12.Invalid)     # L fields differ
    assert isinstance(ft12.find_frame(b"\x68\x02\x02\x68"), ft12.Invalid)  # no room for CI


def test_garbage_is_skipped_to_the_next_start_byte() -> None:
    outcome = ft12.find_frame(b"\x00\x33\x99" + REQ_UD2)
    assert outcome == ft12.Invalid(3, "00 is no FT1.2 start byte")
    frames, junk, rest = ft12.scan(b"\x00\x33\x99" + REQ_UD2 + b"\xff\xe5\x10\x5b")
    assert frames == [ft12.ShortFrame(0x5B, 1), ft12.SingleChar()]
    assert len(junk) == 2 and rest == len(REQ_UD2) + 5   # `10 5B` may still complete


def test_stray_start_byte_before_a_frame_skips_only_itself() -> None:
    # A 68 whose "L" bytes are the next frame's start: rejected, and the real frame is found.
    frames, junk, _ = ft12.scan(b"\x68" + RSP_UD)
    assert frames == [ft12.parse_frame(RSP_UD)] and len(junk) == 1
    frames, _, _ = ft12.scan(b"\x10\x10" + REQ_UD2)
    assert frames == [ft12.ShortFrame(0x5B, 1)]


def test_bad_checksum_and_stop_byte() -> None:
    bad = bytearray(RSP_UD)
    bad[-2] ^= 0x01
    outcome = ft12.find_frame(bytes(bad))
    assert isinstance(outcome, ft12.Invalid) and outcome.checksum
    with pytest.raises(ChecksumError, match="checksum"):
        ft12.parse_frame(bytes(bad))
    with pytest.raises(FrameError, match="stop byte"):
        ft12.parse_frame(REQ_UD2[:-1] + b"\x17")


def test_parse_frame_refuses_truncated_and_trailing_bytes() -> None:
    with pytest.raises(FrameError, match="truncated"):
        ft12.parse_frame(bytes.fromhex("68030368080BFF16"))   # pyMeterBus test_tg_header
    with pytest.raises(FrameError, match="after the frame"):
        ft12.parse_frame(REQ_UD2 + b"\xe5")


def test_two_byte_address() -> None:
    frame = ft12.ShortFrame(0x49, 0x1234)
    wire = ft12.build_frame(frame, address_width=2)
    assert wire == bytes.fromhex("104934128F16")
    assert ft12.parse_frame(wire, address_width=2) == frame
    long_frame = ft12.LongFrame(0x08, 0xBEEF, 0x72, b"\x01")
    assert ft12.parse_frame(ft12.build_frame(long_frame, 2), 2) == long_frame
    with pytest.raises(ValueError):
        ft12.find_frame(wire, address_width=3)


def test_build_refuses_what_does_not_fit() -> None:
    with pytest.raises(ValueError):
        ft12.build_frame(ft12.ShortFrame(0x5B, 256))
    with pytest.raises(ValueError):
        ft12.build_frame(ft12.LongFrame(0x08, 1, 0x72, bytes(253)))
    with pytest.raises(ValueError):
        ft12.LongFrame(0x08, 1, 0x72, b"")


_bytes = st.integers(0, 255)


@st.composite
def frames(draw: st.DrawFn) -> tuple[ft12.Frame, int]:
    width = draw(st.sampled_from(ft12.ADDRESS_WIDTHS))
    address = draw(st.integers(0, (1 << (8 * width)) - 1))
    kind = draw(st.sampled_from(("single", "short", "control", "long")))
    if kind == "single":
        return ft12.SingleChar(), width
    if kind == "short":
        return ft12.ShortFrame(draw(_bytes), address), width
    if kind == "control":
        return ft12.ControlFrame(draw(_bytes), address, draw(_bytes)), width
    data = draw(st.binary(min_size=1, max_size=ft12.MAX_L - 2 - width))
    return ft12.LongFrame(draw(_bytes), address, draw(_bytes), data), width


@given(frames(), st.binary(max_size=8))
def test_round_trip_and_scan_behind_garbage(case: tuple[ft12.Frame, int], junk: bytes) -> None:
    frame, width = case
    wire = ft12.build_frame(frame, width)
    assert ft12.parse_frame(wire, width) == frame
    # Garbage with no start byte in front never hides the frame.
    clean = bytes(b for b in junk if b not in ft12.START_BYTES)
    found, _, end = ft12.scan(clean + wire, width)
    assert found == [frame] and end == len(clean) + len(wire)


@given(st.binary(max_size=300), st.sampled_from(ft12.ADDRESS_WIDTHS))
def test_any_bytes_give_an_outcome_or_frame_error(data: bytes, width: int) -> None:
    outcome = ft12.find_frame(data, width)
    assert isinstance(outcome, ft12.Found | ft12.NeedMore | ft12.Invalid)
    if isinstance(outcome, ft12.Invalid):
        assert outcome.skip >= 1
    with contextlib.suppress(FrameError):
        ft12.parse_frame(data, width)


def test_frame_end_finder_for_the_transport_kit() -> None:
    assert [ft12.frame_end(REQ_UD2[:n]) for n in range(1, 5)] == [None] * 4
    assert ft12.frame_end(REQ_UD2 + b"\xe5") == len(REQ_UD2)
    with pytest.raises(FrameError, match="start byte"):
        ft12.frame_end(b"\x00")
    with pytest.raises(ChecksumError):
        ft12.frame_end(REQ_UD2[:3] + b"\x00\x16")
