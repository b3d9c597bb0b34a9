"""The TCP/UDP wrapper and DLMS inside wired M-Bus segments (the Austrian push case)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.dlms.decode import decode
from drivers.dlms.errors import NeedMore
from drivers.dlms.link import (
    WrapperPdu,
    decode_mbus_segment,
    decode_wrapper,
    join_mbus_segments,
    wrapper_end,
)
from drivers.dlms.security import Keys
from drivers.errors import ChecksumError, FrameError
from tests.drivers.dlms import vectors

KEY = Keys(bytes(range(16)), bytes(range(16, 32)))
TITLE = b"KFM\x10\x20\x30\x40\x50"


def _mbus(ci: int, data: bytes, control: int = 0x53, address: int = 0xFF) -> bytes:
    body = bytes([control, address, ci, 0x01, 0x67]) + data
    return bytes([0x68, len(body), len(body), 0x68]) + body + bytes([sum(body) & 0xFF, 0x16])


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(max_size=300))
def test_wrapper_round_trips(source: int, destination: int, apdu: bytes) -> None:
    raw = WrapperPdu(source, destination, apdu).encode()
    assert wrapper_end(raw) == len(raw)
    assert decode_wrapper(raw + b"next") == (WrapperPdu(source, destination, apdu), len(raw))
    with pytest.raises(NeedMore):
        decode_wrapper(raw[:-1] if apdu else raw[:7])


def test_wrapper_version_is_checked() -> None:
    with pytest.raises(FrameError, match="version"):
        decode_wrapper(b"\x00\x02\x00\x01\x00\x01\x00\x00")


def test_mbus_segments_join_into_a_ciphered_push() -> None:
    push = bytes.fromhex("0F0000000100" "0101" "0203" "09060100010700FF" "0600000528" "0202"
                         "0F00161B")  # {1-0:1.7.0.255, 1320, {0, W}}
    sealed = vectors.general_glo(push, TITLE, 0x1234, ek=KEY.encryption, ak=KEY.authentication)
    frames = [_mbus(0x00, sealed[:40]), _mbus(0x11, sealed[40:])]
    assert decode_mbus_segment(frames[0]).stsap == 0x01
    assert join_mbus_segments(frames) == sealed
    result = decode([f.hex() for f in frames], key=KEY.encryption.hex(),
                    auth_key=KEY.authentication.hex())
    assert result["link"] == {"transport": "mbus", "segments": 2}
    assert result["apdu"]["type"] == "data-notification"
    assert result["plaintext_hex"] == push.hex().upper()
    assert result["objects"] == [{"obis": "1-0:1.7.0.255", "value": "1320", "unit": "W",
                                  "scaler": 0}]


def test_a_hand_built_wrapped_push_decodes() -> None:
    raw = vectors.wrapped(vectors.general_glo(vectors.PUSH, vectors.METER_TITLE, 5), 1, 0x66)
    pdu, used = decode_wrapper(raw)
    assert (pdu.source_wport, pdu.destination_wport, used) == (1, 0x66, len(raw))
    assert pdu.apdu[:2] == b"\xdb\x08" and WrapperPdu(1, 0x66, pdu.apdu).encode() == raw
    result = decode([raw.hex()], key=vectors.EK.hex(), auth_key=vectors.AK.hex())
    assert result["objects"] == list(vectors.PUSH_OBJECTS)


def test_mbus_segment_errors() -> None:
    with pytest.raises(NeedMore):
        join_mbus_segments([_mbus(0x00, b"a")])
    with pytest.raises(FrameError, match="expected 1"):
        join_mbus_segments([_mbus(0x00, b"a"), _mbus(0x12, b"b")])
    with pytest.raises(FrameError, match="not a DLMS segment"):
        decode_mbus_segment(_mbus(0x72, b"a"))
    bad = bytearray(_mbus(0x10, b"abc"))
    bad[-2] ^= 1
    with pytest.raises(ChecksumError):
        decode_mbus_segment(bytes(bad))
