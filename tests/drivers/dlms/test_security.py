"""Security suite 0: vectors built independently of drivers/dlms (tests/drivers/dlms/vectors.py)
open to their plaintexts, seal/open round trips for each security control, wrong keys and
damaged frames as CipherError, HLS-GMAC, the invocation-counter guard."""

from __future__ import annotations

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
from tests.drivers.dlms import vectors
from tests.drivers.dlms.vectors import CLIENT_TITLE, METER_TITLE

# keys, title and APDU of this project's own (the vectors module builds them independently)
KEYS = Keys(vectors.EK, vectors.AK)
TITLE = METER_TITLE
GET_CLOCK = bytes.fromhex("C001C1" "0008" "0000010000FF" "02" "00")  # clock 0-0:1.0.0.255, attr 2
OTHER_KEY = bytes.fromhex("11" * 16)


def test_hand_built_glo_get_request_opens_and_seals_the_same() -> None:
    raw = vectors.service_glo(vectors.GLO_GET_REQUEST, vectors.GET_REQUEST, CLIENT_TITLE,
                              0x01234567)
    assert raw[:2] == bytes([0xC8, 1 + 4 + len(vectors.GET_REQUEST) + 12])
    protected = parse_protected(raw)
    assert (protected.system_title, protected.security_control,
            protected.invocation_counter) == (None, 0x30, 0x01234567)
    assert open_protected(protected, KEYS, CLIENT_TITLE) == vectors.GET_REQUEST
    assert seal(vectors.GET_REQUEST, KEYS, CLIENT_TITLE, 0x01234567, 0x30, 0xC8) == raw
    for damaged in (vectors.flip(raw, 7), vectors.flip(raw, len(raw) - 1, 0x80),
                    vectors.flip(raw, 3)):  # ciphertext, tag, invocation counter
        with pytest.raises(CipherError):
            open_protected(parse_protected(damaged), KEYS, CLIENT_TITLE)
    with pytest.raises(CipherError):
        open_protected(protected, Keys(OTHER_KEY, vectors.AK), CLIENT_TITLE)
    with pytest.raises(CipherError):
        open_protected(protected, Keys(vectors.EK, OTHER_KEY), CLIENT_TITLE)
    with pytest.raises(CipherError):
        open_protected(protected, KEYS, METER_TITLE)  # another sender's IV


@pytest.mark.parametrize("control", [vectors.SC_BOTH, vectors.SC_AUTHENTICATED,
                                     vectors.SC_ENCRYPTED])
def test_hand_built_general_glo_push_opens_to_its_plaintext(control: int) -> None:
    raw = vectors.general_glo(vectors.PUSH, METER_TITLE, 0x2A, control)
    assert raw[:10] == bytes([0xDB, 8]) + METER_TITLE
    protected = parse_protected(raw)
    assert protected.system_title == METER_TITLE and protected.invocation_counter == 0x2A
    assert open_protected(protected, KEYS) == vectors.PUSH
    assert seal(vectors.PUSH, KEYS, METER_TITLE, 0x2A, control) == raw
    if control & vectors.SC_AUTHENTICATED:
        with pytest.raises(CipherError):
            open_protected(parse_protected(vectors.flip(raw, 40)), KEYS)
        with pytest.raises(CipherError):
            open_protected(protected, Keys(OTHER_KEY, vectors.AK))
    else:  # no tag: a wrong key gives other bytes, never the plaintext
        assert open_protected(protected, Keys(OTHER_KEY)) != vectors.PUSH


def test_hand_built_hls_gmac_tag() -> None:
    challenge = vectors.SERVER_CHALLENGE
    expected = vectors.hls_gmac(challenge, CLIENT_TITLE, 0x0101)
    assert len(expected) == 17 and expected[:5] == bytes.fromhex("1000000101")
    answer = hls_gmac_response(KEYS, CLIENT_TITLE, 0x0101, challenge)
    assert answer == expected
    assert hls_gmac_verify(KEYS, CLIENT_TITLE, challenge, expected) == 0x0101
    with pytest.raises(CipherError):
        hls_gmac_verify(KEYS, METER_TITLE, challenge, expected)  # the other side's title
    with pytest.raises(CipherError):
        hls_gmac_verify(KEYS, CLIENT_TITLE, vectors.CLIENT_CHALLENGE, expected)
    with pytest.raises(CipherError):
        hls_gmac_verify(Keys(vectors.EK, OTHER_KEY), CLIENT_TITLE, challenge, expected)
    with pytest.raises(CipherError):
        hls_gmac_verify(Keys(OTHER_KEY, vectors.AK), CLIENT_TITLE, challenge, expected)
    for at in (4, 5, 16):  # the counter, the first and the last tag byte
        with pytest.raises(CipherError):
            hls_gmac_verify(KEYS, CLIENT_TITLE, challenge, vectors.flip(expected, at))


def test_wrapped_pushes_open_and_a_replay_is_refused() -> None:
    wire = vectors.pushes(4, first=0x00FFFFFE)  # counters across a byte boundary
    kept: list[int] = []
    guard = InvocationCounterGuard(lambda: kept[-1] if kept else None, kept.append)
    for n, raw in enumerate(wire):
        pdu, used = decode_wrapper(raw)
        assert used == len(raw) and (pdu.source_wport, pdu.destination_wport) == (1, 0x66)
        protected = parse_protected(pdu.apdu)
        guard.check(protected.invocation_counter)
        assert open_protected(protected, KEYS) == vectors.PUSH
        guard.accept(protected.invocation_counter)
        assert kept[-1] == 0x00FFFFFE + n
    for replayed in (wire[3], wire[1]):
        pdu, _ = decode_wrapper(replayed)
        with pytest.raises(ReplayRefused):
            guard.check(parse_protected(pdu.apdu).invocation_counter)
    pdu, _ = decode_wrapper(wire[0])
    with pytest.raises(CipherError):
        open_protected(parse_protected(pdu.apdu), Keys(OTHER_KEY, OTHER_KEY))


@pytest.mark.parametrize("control", [0x30, 0x20, 0x10, 0x00, 0x70])
def test_seal_then_open_each_security_control(control: int) -> None:
    sealed = seal(GET_CLOCK, KEYS, TITLE, 7, control)
    protected = parse_protected(sealed)
    assert protected.system_title == TITLE and protected.invocation_counter == 7
    assert open_protected(protected, KEYS) == GET_CLOCK


@pytest.mark.parametrize("control", [SC_AUTHENTICATED | SC_ENCRYPTED, SC_AUTHENTICATED])
def test_damage_or_wrong_key_is_a_cipher_error(control: int) -> None:
    sealed = bytearray(seal(GET_CLOCK, KEYS, TITLE, 7, control))
    sealed[-5] ^= 0x01
    with pytest.raises(CipherError):
        open_protected(parse_protected(bytes(sealed)), KEYS)
    other = Keys(bytes(16), KEYS.authentication)
    with pytest.raises(CipherError):
        open_protected(parse_protected(seal(GET_CLOCK, KEYS, TITLE, 7, control)), other)


def test_refusals_without_the_needed_parts() -> None:
    service_specific = seal(GET_CLOCK, KEYS, TITLE, 1, 0x30, 0xC8)
    with pytest.raises(CipherError, match="system title"):
        open_protected(parse_protected(service_specific), KEYS)
    with pytest.raises(CipherError, match="authentication key"):
        open_protected(parse_protected(seal(GET_CLOCK, KEYS, TITLE, 1, 0x30)),
                       Keys(KEYS.encryption))
    with pytest.raises(CipherError, match="suite"):
        parse_protected(bytes([GENERAL_GLO_CIPHERING, 8]) + TITLE + b"\x05\x31\x00\x00\x00\x01")
    with pytest.raises(FrameError):
        parse_protected(bytes([GENERAL_GLO_CIPHERING, 8]) + TITLE + b"\x09\x30")


def test_keys_never_show() -> None:
    assert KEYS.encryption.hex() not in repr(KEYS).lower()
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
    sealed = seal(plain, KEYS, TITLE, counter, control)
    assert open_protected(parse_protected(sealed), KEYS) == plain


def test_encryption_only_is_gcm_without_its_tag() -> None:
    # Austrian / Swiss M-Bus pushes (SC 0x20) carry no tag: the ciphertext must be the one GCM
    # makes (counter mode from block 2), only the tag left out.
    both = parse_protected(seal(GET_CLOCK, KEYS, TITLE, 9, 0x30)).payload
    only = parse_protected(seal(GET_CLOCK, KEYS, TITLE, 9, 0x20)).payload
    assert only == both[:-12]
