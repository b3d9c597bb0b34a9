"""Security suite 0: published vectors, seal/open round trips for each security control,
wrong keys and damaged frames as CipherError, HLS-GMAC, the invocation-counter guard."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.dlms.errors import CipherError, ReplayRefused
from drivers.dlms.link import decode_wrapper
from drivers.dlms.security import (
    GENERAL_GLO_CIPHERING,
    SC_AUTHENTICATED,
    SC_ENCRYPTED,
    InvocationCounterGuard,
    Keys,
    hls_gmac_response,
    hls_gmac_verify,
    open_protected,
    parse_protected,
    seal,
)
from drivers.errors import FrameError
from tests.drivers.dlms.corpus import entries

GREEN = Keys(bytes.fromhex("000102030405060708090A0B0C0D0E0F"),
             bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"))
TITLE = bytes.fromhex("4D4D4D0000BC614E")
GET_CLOCK = bytes.fromhex("C0010000080000010000FF0200")


def _entry(name: str) -> dict[str, Any]:
    return next(e for e in entries("ciphered.json") if e["name"] == name)


def test_published_glo_get_request_vector() -> None:
    entry = _entry("dlms-cosem/test_security/test_decrypt_authenticated")
    raw = bytes.fromhex(entry["frames_hex"][0])
    assert open_protected(parse_protected(raw), GREEN, TITLE) == GET_CLOCK
    assert seal(GET_CLOCK, GREEN, TITLE, 0x01234567, 0x30, 0xC8) == raw


def test_published_hls_gmac_vector() -> None:
    entry = _entry("dlms-cosem/test_security/test_gmac")
    answer = hls_gmac_response(GREEN, bytes.fromhex("4D4D4D0000000001"), 1,
                               bytes.fromhex(str(entry["challenge_hex"])))
    assert answer[5:].hex().upper() == entry["expected_tag_hex"]
    assert hls_gmac_verify(GREEN, bytes.fromhex("4D4D4D0000000001"),
                           bytes.fromhex(str(entry["challenge_hex"])), answer) == 1
    with pytest.raises(CipherError):
        hls_gmac_verify(GREEN, TITLE, bytes.fromhex(str(entry["challenge_hex"])), answer)


def test_udp_pushes_open_with_the_published_key() -> None:
    pushes = [e for e in entries("ciphered.json") if e["transport"] == "wrapper"]
    assert len(pushes) == 13
    keys = Keys(b"MYDUMMYGLOBALKEY", b"MYDUMMYGLOBALKEY")
    counters = []
    for entry in pushes:
        pdu, _ = decode_wrapper(bytes.fromhex(entry["frames_hex"][0]))
        protected = parse_protected(pdu.apdu)
        plain = open_protected(protected, keys)
        assert plain[0] == 0x0F
        if entry["expected_plaintext_hex"]:
            assert plain.hex().upper() == entry["expected_plaintext_hex"]
        counters.append(protected.invocation_counter)
    assert counters == sorted(counters)


@pytest.mark.parametrize("control", [0x30, 0x20, 0x10, 0x00, 0x70])
def test_seal_then_open_each_security_control(control: int) -> None:
    sealed = seal(GET_CLOCK, GREEN, TITLE, 7, control)
    protected = parse_protected(sealed)
    assert protected.system_title == TITLE and protected.invocation_counter == 7
    assert open_protected(protected, GREEN) == GET_CLOCK


@pytest.mark.parametrize("control", [SC_AUTHENTICATED | SC_ENCRYPTED, SC_AUTHENTICATED])
def test_damage_or_wrong_key_is_a_cipher_error(control: int) -> None:
    sealed = bytearray(seal(GET_CLOCK, GREEN, TITLE, 7, control))
    sealed[-5] ^= 0x01
    with pytest.raises(CipherError):
        open_protected(parse_protected(bytes(sealed)), GREEN)
    other = Keys(bytes(16), GREEN.authentication)
    with pytest.raises(CipherError):
        open_protected(parse_protected(seal(GET_CLOCK, GREEN, TITLE, 7, control)), other)


def test_refusals_without_the_needed_parts() -> None:
    service_specific = seal(GET_CLOCK, GREEN, TITLE, 1, 0x30, 0xC8)
    with pytest.raises(CipherError, match="system title"):
        open_protected(parse_protected(service_specific), GREEN)
    with pytest.raises(CipherError, match="authentication key"):
        open_protected(parse_protected(seal(GET_CLOCK, GREEN, TITLE, 1, 0x30)),
                       Keys(GREEN.encryption))
    with pytest.raises(CipherError, match="suite"):
        parse_protected(bytes([GENERAL_GLO_CIPHERING, 8]) + TITLE + b"\x05\x31\x00\x00\x00\x01")
    with pytest.raises(FrameError):
        parse_protected(bytes([GENERAL_GLO_CIPHERING, 8]) + TITLE + b"\x09\x30")


def test_keys_never_show() -> None:
    assert GREEN.encryption.hex() not in repr(GREEN).lower()
    with pytest.raises(ValueError) as caught:
        Keys(b"short-secret")
    assert "short-secret" not in str(caught.value)


def test_invocation_counter_guard_refuses_replays() -> None:
    kept: list[int] = []
    guard = InvocationCounterGuard(lambda: kept[-1] if kept else None, kept.append)
    guard.accept(5)
    guard.accept(6)
    for old in (6, 5, 0):
        with pytest.raises(ReplayRefused):
            guard.check(old)
    with pytest.raises(ReplayRefused):
        guard.accept(6)
    assert kept == [5, 6]


@given(st.binary(max_size=200), st.integers(0, 0xFFFFFFFF),
       st.sampled_from([0x00, 0x10, 0x20, 0x30]))
def test_seal_open_round_trip(plain: bytes, counter: int, control: int) -> None:
    sealed = seal(plain, GREEN, TITLE, counter, control)
    assert open_protected(parse_protected(sealed), GREEN) == plain


def test_encryption_only_is_gcm_without_its_tag() -> None:
    # Austrian / Swiss M-Bus pushes (SC 0x20) carry no tag: the ciphertext must be the one GCM
    # makes (counter mode from block 2), only the tag left out.
    both = parse_protected(seal(GET_CLOCK, GREEN, TITLE, 9, 0x30)).payload
    only = parse_protected(seal(GET_CLOCK, GREEN, TITLE, 9, 0x20)).payload
    assert only == both[:-12]
