"""HDLC framing (IEC 62056-46): golden frames, byte-by-byte feeding, garbage, bad checksums,
stray flags, addresses, control field, segmentation, SNRM/UA parameters; hypothesis round trip."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from drivers.dlms.errors import NeedMore
from drivers.dlms.hdlc import (
    LLC_RESPONSE,
    Address,
    Control,
    FrameKind,
    HdlcFrame,
    build_frame,
    crc16_x25,
    decode_address,
    decode_control,
    decode_frame,
    frame_end,
    scan_frames,
    strip_llc,
)
from drivers.dlms.link import LinkParameters, Reassembler, decode_parameters
from drivers.errors import ChecksumError, FrameError
from drivers.transport.memory import MemoryStream, split_every_way
from tests.drivers.dlms.corpus import entries

HDLC = [bytes.fromhex(f) for e in entries() if e["transport"] == "hdlc" for f in e["frames_hex"]]
# pwitab/dlms-cosem tests/test_hdlc/test_hdlc.py test_construct: an AARQ in an I frame
AARQ_FRAME = bytes.fromhex("7EA02C02232110AF9FE6E600601DA109060760857405080101BE10040E01000000"
                           "065F1F0400001E1DFFFFC5E47E")


def test_crc16_x25_check_value() -> None:
    assert crc16_x25(b"123456789") == 0x906E  # the catalogue's check value of CRC-16/X.25


@pytest.mark.parametrize("raw", HDLC, ids=lambda r: r[:12].hex())
def test_every_corpus_frame_decodes_and_builds_back(raw: bytes) -> None:
    frame, used = decode_frame(raw)
    assert used == len(raw)
    assert build_frame(frame) == raw


def test_aarq_frame_fields() -> None:
    frame, _ = decode_frame(AARQ_FRAME)
    assert frame.destination == Address(1, 17, 2)
    assert frame.source == Address(16)
    assert frame.control == Control(FrameKind.I, True, 0, 0)
    assert strip_llc(frame.information)[:1] == b"\x60"


def test_byte_by_byte_needs_more_until_the_last_flag() -> None:
    for cut in range(len(AARQ_FRAME)):
        with pytest.raises(NeedMore):
            decode_frame(AARQ_FRAME[:cut])
        assert frame_end(AARQ_FRAME[:cut]) is None
    assert frame_end(AARQ_FRAME) == len(AARQ_FRAME)


def test_garbage_before_and_after_is_skipped() -> None:
    stream = b"\x00\x13garbage" + AARQ_FRAME + b"\x7e\x7e" + AARQ_FRAME + b"trailing"
    first, used = decode_frame(stream)
    second, used2 = decode_frame(stream[used:])
    assert first == second
    assert stream[used + used2:] == b"trailing"


def test_stray_flags_before_a_frame() -> None:
    frame, used = decode_frame(b"\x7e\x7e\x7e" + AARQ_FRAME)
    assert used == len(AARQ_FRAME) + 3
    assert frame.information.startswith(b"\xe6\xe6\x00")


def test_bad_fcs_and_hcs_are_checksum_errors() -> None:
    bad_fcs = bytearray(AARQ_FRAME)
    bad_fcs[-2] ^= 0x01
    with pytest.raises(ChecksumError, match="FCS"):
        decode_frame(bytes(bad_fcs))
    bad_hcs = bytearray(AARQ_FRAME)
    bad_hcs[7] ^= 0x01  # the HCS itself; FCS recomputed so only the HCS fails
    body = bytes(bad_hcs[1:-3])
    bad_hcs[-3:-1] = crc16_x25(body).to_bytes(2, "little")
    with pytest.raises(ChecksumError, match="HCS"):
        decode_frame(bytes(bad_hcs))


def test_invalid_frames_are_frame_errors() -> None:
    with pytest.raises(FrameError, match="type 3"):
        decode_frame(b"\x7e\x10\x07\x03\x21\x93\x00\x00\x7e")
    with pytest.raises(FrameError, match="minimum"):
        decode_frame(b"\x7e\xa0\x03\x03\x7e")
    with pytest.raises(FrameError, match="flag"):
        decode_frame(AARQ_FRAME[:-1] + b"\x00")
    with pytest.raises(NeedMore):
        decode_frame(b"no flag at all")


@pytest.mark.parametrize("address", [Address(1), Address(0x7F), Address(1, 17, 2),
                                     Address(0x3FFF, 0x3FFF, 4), Address(1, 0x1234, 4)])
def test_addresses_round_trip(address: Address) -> None:
    raw = address.encode()
    assert len(raw) == address.size
    assert decode_address(raw, 0) == (address, address.size)


def test_three_and_five_byte_addresses_are_refused() -> None:
    with pytest.raises(FrameError, match="3 bytes"):
        decode_address(b"\x02\x02\x03", 0)
    with pytest.raises(FrameError, match="longer"):
        decode_address(b"\x02\x02\x02\x02\x03", 0)


@pytest.mark.parametrize("kind", list(FrameKind))
def test_control_kinds_round_trip(kind: FrameKind) -> None:
    numbered = kind in (FrameKind.I, FrameKind.RR, FrameKind.RNR)
    control = Control(kind, False, 5 if kind is FrameKind.I else 0, 3 if numbered else 0)
    assert decode_control(control.encode(), 0) == control


def test_snrm_ua_parameters() -> None:
    ua = bytes.fromhex("8180140502008006020080070400000001080400000001")
    params = decode_parameters(ua)
    assert params == LinkParameters(128, 128, 1, 1)
    proposed = LinkParameters(1024, 1024, 1, 1)
    assert decode_parameters(proposed.encode()) == proposed
    assert proposed.agreed_with(LinkParameters(512, 256, 1, 1)) == LinkParameters(256, 512, 1, 1)
    assert decode_parameters(b"") == LinkParameters()
    with pytest.raises(FrameError):
        decode_parameters(b"\x81\x80\x05\x05\x09\x00")


def test_segmented_frames_are_reassembled() -> None:
    apdu = bytes(range(256)) * 3
    info = LLC_RESPONSE + apdu
    parts = [info[i:i + 300] for i in range(0, len(info), 300)]
    reassembler = Reassembler()
    control = Control(FrameKind.UI)
    results = []
    for i, part in enumerate(parts):
        raw = build_frame(HdlcFrame(Address(16), Address(1, 17, 2), control, part,
                                    segmented=i < len(parts) - 1))
        frame, _ = decode_frame(raw)
        results.append(reassembler.add(frame))
    assert results[:-1] == [None] * (len(parts) - 1)
    assert results[-1] == apdu


def test_reassembly_is_bounded() -> None:
    reassembler = Reassembler(max_bytes=100)
    frame = HdlcFrame(Address(16), Address(1), Control(FrameKind.I), b"\xe6\xe7\x00" + b"x" * 60,
                      segmented=True)
    reassembler.add(frame)
    with pytest.raises(FrameError, match="beyond"):
        reassembler.add(frame)


_ADDRESSES = st.one_of(
    st.builds(Address, st.integers(0, 0x7F)),
    st.builds(Address, st.integers(0, 0x7F), st.integers(0, 0x7F), st.just(2)),
    st.builds(Address, st.integers(0, 0x3FFF), st.integers(0, 0x3FFF), st.just(4)))
_CONTROLS = st.one_of(
    st.builds(Control, st.just(FrameKind.I), st.booleans(), st.integers(0, 7), st.integers(0, 7)),
    st.builds(Control, st.sampled_from([FrameKind.RR, FrameKind.RNR]), st.booleans(),
              st.just(0), st.integers(0, 7)),
    st.builds(Control, st.sampled_from([FrameKind.SNRM, FrameKind.DISC, FrameKind.UA,
                                        FrameKind.DM, FrameKind.FRMR, FrameKind.UI]),
              st.booleans()))


@given(_ADDRESSES, _ADDRESSES, _CONTROLS, st.binary(max_size=300), st.booleans(),
       st.binary(max_size=8))
@example(Address(1), Address(16), Control(FrameKind.UI), b"\x7e\x7e", False, b"\x7e")
def test_build_then_decode_round_trips(dst: Address, src: Address, control: Control,
                                       info: bytes, segmented: bool, garbage: bytes) -> None:
    frame = HdlcFrame(dst, src, control, info, segmented)
    raw = build_frame(frame)
    clean = garbage.replace(b"\x7e", b"")
    assert decode_frame(clean + raw) == (frame, len(clean) + len(raw))


def test_scan_resynchronises_after_damage_and_keeps_the_tail() -> None:
    bad = bytearray(AARQ_FRAME)
    bad[20] ^= 0x40  # FCS now fails
    stream = (b"\x7e\x12\x7e" + AARQ_FRAME + bytes(bad) + b"\x00\x7e\x7e\x7e" + AARQ_FRAME
              + AARQ_FRAME[:10])
    scan = scan_frames(stream)
    assert len(scan.frames) == 2 and scan.frames[0] == scan.frames[1]
    assert any(isinstance(e, ChecksumError) for e in scan.errors)
    assert scan.rest == AARQ_FRAME[:10]
    assert scan_frames(scan.rest + AARQ_FRAME[10:]).frames == scan.frames[:1]


def test_start_byte_stress() -> None:
    """Flags everywhere (zigpy-znp's start-byte case): every good frame is still found, fed
    at once or byte by byte."""
    good = [build_frame(HdlcFrame(Address(16), Address(1), Control(FrameKind.UI),
                                  bytes([0x7E] * n))) for n in range(0, 40, 7)]
    stream = b"".join(b"\x7e" * (i % 3) + b"\x7e\xa0\x7e" + frame for i, frame in enumerate(good))
    assert [build_frame(f) for f in scan_frames(stream).frames] == good
    found: list[HdlcFrame] = []
    pending = b""
    for byte in stream:
        scan = scan_frames(pending + bytes([byte]))
        found += scan.frames
        pending = scan.rest
    assert [build_frame(f) for f in found] == good


@pytest.mark.parametrize("chunks", split_every_way(AARQ_FRAME)[::5])
async def test_frame_end_finds_frames_through_the_transport_kit(chunks: list[bytes]) -> None:
    stream = MemoryStream(protocol="dlms")
    stream.feed(*chunks)
    raw = await stream.read_message(frame_end, 1.0, 1.0, "HDLC frame")
    assert decode_frame(raw) == (decode_frame(AARQ_FRAME)[0], len(AARQ_FRAME))
    stream.close()
