"""Dongle framers (byte by byte, garbage, bad checksums), line input, and the key store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.wmbus import dongles as D
from drivers.wmbus.keys import KeyStore, MeterKeyFileError

TELEGRAM = bytes.fromhex("2E44931578563412330333637A2A0020255923C95AAA26D1B2E7493BC2AD013EC4A6"
                         "F6D3529B520EDFF0EA6DEFC955B2")[:47]   # the OMS example, L = 0x2E
KEY_HEX = "0102030405060708090A0B0C0D0E0F11"


def im_indication() -> bytes:
    return D.im871a_encode(D.IM_EP_RADIOLINK, D.IM_WMBUS_MSG_IND, TELEGRAM[1:], rssi=0x50)


def amb_indication() -> bytes:
    return D.amb8465_encode(D.AMB_DATA_IND, TELEGRAM[1:] + b"\x10")


@pytest.mark.parametrize("framer_cls,encoded", [
    (D.Im871aFramer, im_indication()), (D.Amb8465Framer, amb_indication())])
def test_byte_by_byte_with_garbage_and_bad_frame(framer_cls, encoded) -> None:
    framer = framer_cls()
    broken = bytearray(encoded)
    broken[8] ^= 0xFF
    # A stray start byte may announce a long frame: it delays, but loses nothing once more
    # bytes arrive and its checksum fails.
    stream = b"\x00\x13garbage" + bytes(broken) + encoded + b"\xff\xa5" + encoded * 6
    frames = [f for byte in stream for f in framer.feed(bytes([byte]))]
    assert [f.frame for f in frames] == [TELEGRAM] * 7
    assert framer.bad_frames >= 1 and framer.dropped_bytes > 0
    assert frames[0].rssi_dbm is not None


def test_rssi_conversions() -> None:
    assert D.amb8465_rssi_dbm(0x10) == -66
    assert D.amb8465_rssi_dbm(0xF0) == -82


def test_command_responses_are_not_telegrams() -> None:
    framer = D.Im871aFramer()
    (frame,) = framer.feed(D.im871a_encode(D.IM_EP_DEVMGMT, D.IM_PING_RSP))
    assert frame.frame is None and frame.command == (D.IM_EP_DEVMGMT << 8) | D.IM_PING_RSP


def test_line_input_formats() -> None:
    rtl = D.parse_line(f"T1;1;1;2019-04-03 19:00:42.000;97;148;88888888;0x{TELEGRAM.hex()}")
    assert rtl is not None and rtl.frame == TELEGRAM and rtl.rssi_dbm == 97
    assert D.parse_line(f"T1;0;1;2019;97;148;8;0x{TELEGRAM.hex()}") is None   # CRC failed
    plain = D.parse_line(TELEGRAM.hex().upper())
    assert plain is not None and plain.frame == TELEGRAM
    assert D.parse_line("# comment") is None
    with pytest.raises(ValueError):
        D.parse_line("not hex")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_framers_never_raise(data: bytes) -> None:
    for framer in (D.Im871aFramer(), D.Amb8465Framer()):
        framer.feed(data)


def test_keystore_round_trip_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "wmbus.keys"
    store = KeyStore(path)
    store.add("12345678", KEY_HEX)
    assert os.stat(path).st_mode & 0o777 == 0o600
    again = KeyStore(path)
    assert again.get("12345678") == bytes.fromhex(KEY_HEX)
    assert "12345678" in again and again.ids() == ["12345678"]
    assert KEY_HEX not in repr(again) and KEY_HEX.lower() not in repr(again)
    assert again.remove("12345678") and not KeyStore(path).ids()


def test_keystore_refuses_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"12345678 {KEY_HEX}\n")
    path.chmod(0o644)
    with pytest.raises(MeterKeyFileError, match="chmod 600"):
        KeyStore(path)


def test_keystore_bad_line_does_not_echo_key(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"1234567 {KEY_HEX}\n")
    path.chmod(0o600)
    with pytest.raises(MeterKeyFileError) as info:
        KeyStore(path)
    assert KEY_HEX not in str(info.value) and ":1:" in str(info.value)
