"""Link layer (formats A/B, CRCs), CI chain and security: golden frames, round trips, fuzzing."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import ChecksumError, DriverError
from drivers.mbus.records import RecordSpec
from drivers.wmbus import link
from drivers.wmbus import security as sec
from drivers.wmbus.builder import (
    add_format_a_crcs,
    build_compact_frame,
    build_frame,
    build_payload,
)
from drivers.wmbus.telegram import PlaintextRefused, TelegramDecoder, UnknownFormat

KEY = bytes.fromhex("0F0E0D0C0B0A09080706050403020100")
PAYLOAD = build_payload([RecordSpec(0xC, 0x13, 1234567), RecordSpec(0x2, 0x59, 2150)])
SENSOSTAR_MODE7 = (  # corpus: 8C ELL, 90 AFL (CMAC), 7A mode 7, format B CRCs present
    "C244C5140443054300048C200E900F002C25895E02003B0877D31DA840B17A0E009007100F8FAD4C4E61400D"
    "A4F3B1F7E273CC4C5C07F93CD20B237345DB39F9A98F8415E1C4B7A25C86E4C22D05C3352FA7E2E5627031F1"
    "4643063F1DC8FE2C32459B6F02E4234B447B18E4BFDA8C4DA9B1EDE6CF29D0B2122A3E8B9DEEBEE3E6DBE6617"
    "B4E709EC6B595179CB01C2C0BDE6723A345B708652880C114A58DA07C73AD9EB8ACB17FA0A88F19BC84CB1FC5"
    "6672DE8A9603FD0C05010002FD0B2111F60B")
SENSOSTAR_KEY = bytes.fromhex("622B9656991FF0C1574C0950CF9278D1")
KAMWATER_ELL = ("2A442D2C998734761B168D2091D37CAC21E1D68CDAFFCD3DC452BD802913FF7B1706CA9E35"
                "5D6C2701CC24")
KAMWATER_KEY = bytes.fromhex("28F64A24988064A079AA2C807D6102AE")


def test_manufacturer_round_trip() -> None:
    assert link.manufacturer_name(link.manufacturer_code("KAM")) == "KAM"
    with pytest.raises(ValueError):
        link.manufacturer_code("K4M")


def test_format_a_crcs_checked_and_stripped() -> None:
    frame = build_frame("KAM", "12345678", 1, 7, PAYLOAD, access_number=3)
    with_crcs = add_format_a_crcs(frame)
    assert link.normalize_frame(with_crcs) == frame
    damaged = bytearray(with_crcs)
    damaged[14] ^= 1
    with pytest.raises(ChecksumError):
        link.normalize_frame(bytes(damaged))


def test_mode5_round_trip_and_wrong_key() -> None:
    frame = build_frame("KAM", "12345678", 1, 7, PAYLOAD, access_number=3, key=KEY)
    telegram = TelegramDecoder(lambda _m: KEY).decode(frame)
    assert telegram.security_mode == 5 and telegram.decrypted
    assert telegram.records[0].value == Decimal("1234.567")
    with pytest.raises(sec.WrongKey, match=r"wrong key or corrupt telegram \(meter 12345678\)"):
        TelegramDecoder(lambda _m: bytes(16)).decode(frame)
    with pytest.raises(sec.KeyRequired):
        TelegramDecoder().decode(frame)


def test_plaintext_from_keyed_meter_refused() -> None:
    frame = build_frame("KAM", "12345678", 1, 7, PAYLOAD, access_number=3)
    with pytest.raises(PlaintextRefused):
        TelegramDecoder(lambda _m: KEY).decode(frame)


def test_predecrypted_payload_accepted_only_without_key() -> None:
    frame = bytearray(build_frame("KAM", "12345678", 1, 7, b"\x2f\x2f" + PAYLOAD, access_number=3))
    frame[13:15] = ((5 << 8) | (1 << 4)).to_bytes(2, "little")   # header says mode 5
    telegram = TelegramDecoder().decode(bytes(frame))
    assert telegram.security_mode == 5 and not telegram.decrypted
    with pytest.raises(sec.WrongKey):
        TelegramDecoder(lambda _m: KEY).decode(bytes(frame))


def test_mode7_with_afl_mac() -> None:
    frame = bytes.fromhex(SENSOSTAR_MODE7)
    telegram = TelegramDecoder(lambda _m: SENSOSTAR_KEY).decode(frame)
    assert telegram.ci_chain == ["8C", "90", "7A"] and telegram.security_mode == 7
    energy = next(r for r in telegram.records if r.kind == "energy" and r.storage == 0)
    assert energy.value == Decimal(9341000)   # Wh; the reference reads 9341 kWh
    tampered = bytearray(frame)
    tampered[-40] ^= 0x01
    with pytest.raises(DriverError):
        TelegramDecoder(lambda _m: SENSOSTAR_KEY).decode(bytes(tampered))


def test_ell_ctr_with_payload_crc() -> None:
    frame = bytes.fromhex(KAMWATER_ELL)
    telegram = TelegramDecoder(lambda _m: KAMWATER_KEY).decode(frame)
    assert telegram.ci_chain == ["8D", "78"] and telegram.decrypted
    with pytest.raises(sec.WrongKey):
        TelegramDecoder(lambda _m: bytes(16)).decode(frame)


def test_compact_frame_of_a_known_kamstrup_format_decodes_before_the_full_frame() -> None:
    full = ("2E442D2C6767676730048D2039D1684020BCDB7803062C000043060000000314630000426C7F2A02"
            "2D130001FF2100")
    compact = "25442D2C6767676730048D203AD2684020D81579E7F1D5902C00000000006300007F2A130000"
    decoder = TelegramDecoder()
    first = decoder.decode(bytes.fromhex(compact))      # the Kamstrup quirk names the format
    decoder.decode(bytes.fromhex(full))
    telegram = decoder.decode(bytes.fromhex(compact))
    assert telegram.ci_chain == ["8D", "79"]
    assert next(r for r in telegram.records if r.kind == "energy").value == Decimal(44000)
    assert first.records == telegram.records


_COMPACT_SPECS = [RecordSpec(0x4, 0x06, 44), RecordSpec(0x2, 0x5B, 21),
                  RecordSpec(0x4, 0x13, 123456, storage=1)]


@pytest.mark.parametrize("ci", [0x79, 0x7B, 0x73])
def test_compact_frame_of_an_unknown_format_needs_full_frame_first(ci: int) -> None:
    full = build_frame("ABC", "12345678", 1, 7, build_payload(_COMPACT_SPECS))
    compact = build_compact_frame("ABC", "12345678", 1, 7, _COMPACT_SPECS, ci=ci,
                                  access_number=3)
    with pytest.raises(UnknownFormat):
        TelegramDecoder().decode(compact)
    decoder = TelegramDecoder()
    expected = decoder.decode(full).records
    telegram = decoder.decode(compact)
    assert telegram.records == expected
    assert telegram.ci_chain == [f"{ci:02X}"]
    if ci == 0x73:   # the long header's id, manufacturer, version and type are the meter's
        assert (telegram.meter_id, telegram.manufacturer, telegram.access_number) == \
            ("12345678", "ABC", 3)


def test_compact_frame_with_a_wrong_data_crc_is_refused() -> None:
    decoder = TelegramDecoder()
    decoder.decode(build_frame("ABC", "12345678", 1, 7, build_payload(_COMPACT_SPECS)))
    compact = bytearray(build_compact_frame("ABC", "12345678", 1, 7, _COMPACT_SPECS))
    compact[-1] ^= 0x01
    with pytest.raises(ChecksumError):
        decoder.decode(bytes(compact))


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=200))
def test_fuzz_frames_only_project_errors(frame: bytes) -> None:
    with contextlib.suppress(DriverError):
        TelegramDecoder(lambda _m: None).decode(frame)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_fuzz_damaged_encrypted_frames(data: st.DataObject) -> None:
    frame = bytearray(build_frame("KAM", "12345678", 1, 7, PAYLOAD, access_number=9, key=KEY))
    index = data.draw(st.integers(min_value=0, max_value=len(frame) - 1))
    frame[index] = data.draw(st.integers(min_value=0, max_value=255))
    cut = data.draw(st.integers(min_value=0, max_value=len(frame)))
    with contextlib.suppress(DriverError):
        TelegramDecoder(lambda _m: KEY).decode(bytes(frame[:cut]))
