"""DLMS security suite 0 (IEC 62056-5-3 5.3.4, AES-GCM-128): ciphered APDUs, HLS-GMAC.

The security control byte says what protects an APDU: bit 4 authentication (a 12-byte GCM tag
over SC || AK || ...), bit 5 encryption, bit 6 the broadcast key, bits 0-3 the suite. The IV is
the sender's system title and its invocation counter. Encryption without authentication has no
tag: that is GCM's counter mode alone (AES-CTR from counter 2). Keys never appear in a repr, a
log line or an error message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from drivers.dlms.axdr import Reader, encode_length
from drivers.dlms.errors import CipherError, ReplayRefused
from drivers.errors import FrameError

SUITE_0: Final = 0
SC_SUITE_MASK: Final = 0x0F
SC_AUTHENTICATED: Final = 0x10
SC_ENCRYPTED: Final = 0x20
SC_BROADCAST_KEY: Final = 0x40
SC_COMPRESSED: Final = 0x80
TAG_BYTES: Final = 12
KEY_BYTES: Final = 16
SYSTEM_TITLE_BYTES: Final = 8
_CTR_FIRST_BLOCK: Final = (2).to_bytes(4, "big")  # GCM: block 1 makes the tag, data from 2

GENERAL_GLO_CIPHERING: Final = 0xDB
GENERAL_DED_CIPHERING: Final = 0xDC
# service-specific ciphered APDUs: tag -> (name, plain tag); the system title is the
# association's, not in the APDU
SERVICE_CIPHERED: Final[dict[int, tuple[str, int]]] = {
    0x21: ("glo-initiate-request", 0x01), 0x28: ("glo-initiate-response", 0x08),
    0xC8: ("glo-get-request", 0xC0), 0xC9: ("glo-set-request", 0xC1),
    0xCA: ("glo-event-notification", 0xC2), 0xCB: ("glo-action-request", 0xC3),
    0xCC: ("glo-get-response", 0xC4), 0xCD: ("glo-set-response", 0xC5),
    0xCF: ("glo-action-response", 0xC7), 0xD0: ("ded-get-request", 0xC0),
    0xD1: ("ded-set-request", 0xC1), 0xD3: ("ded-action-request", 0xC3),
    0xD4: ("ded-get-response", 0xC4), 0xD5: ("ded-set-response", 0xC5),
    0xD7: ("ded-action-response", 0xC7),
}


@dataclass(frozen=True, slots=True)
class Keys:
    """The global unicast encryption key and the authentication key (16 bytes each)."""

    encryption: bytes = field(repr=False)
    authentication: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        if len(self.encryption) != KEY_BYTES or len(self.authentication) not in (0, KEY_BYTES):
            raise ValueError("DLMS suite 0 keys are 16 bytes")  # the key itself stays out


@dataclass(frozen=True, slots=True)
class Protected:
    """A ciphered APDU taken apart: who sent it, how it is protected, the protected bytes."""

    tag: int
    system_title: bytes | None  # general-*-ciphering carries it; service-specific ones do not
    security_control: int
    invocation_counter: int
    payload: bytes  # ciphertext (or plaintext, authentication only), tag included

    @property
    def authenticated(self) -> bool:
        return bool(self.security_control & SC_AUTHENTICATED)

    @property
    def encrypted(self) -> bool:
        return bool(self.security_control & SC_ENCRYPTED)


def is_ciphered(apdu: bytes) -> bool:
    return bool(apdu) and (apdu[0] in (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING)
                           or apdu[0] in SERVICE_CIPHERED)


def parse_protected(apdu: bytes) -> Protected:
    """Split a general-glo/ded-ciphering or service-specific glo-/ded- APDU."""
    reader = Reader(apdu, 1)
    title = None
    if apdu[0] in (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING):
        title = reader.sized("system title")
        if len(title) != SYSTEM_TITLE_BYTES:
            raise FrameError(f"system title of {len(title)} bytes, not 8", 2)
    elif apdu[0] not in SERVICE_CIPHERED:
        raise FrameError(f"APDU tag 0x{apdu[0]:02X} is not a ciphered one", 0)
    content = reader.sized("ciphered content")
    if reader.left:
        raise FrameError(f"{reader.left} bytes after the ciphered content", reader.pos)
    if len(content) < 5:
        raise FrameError("ciphered content shorter than its security header", reader.pos)
    control = content[0]
    if control & SC_SUITE_MASK != SUITE_0 or control & SC_COMPRESSED:
        raise CipherError(f"security control 0x{control:02X}: only suite 0 without "
                          "compression is supported", reader.pos)
    return Protected(apdu[0], title, control, int.from_bytes(content[1:5], "big"), content[5:])


def _iv(system_title: bytes, counter: int) -> bytes:
    if len(system_title) != SYSTEM_TITLE_BYTES:
        raise CipherError("the sender's system title is unknown or not 8 bytes")
    return system_title + counter.to_bytes(4, "big")


def open_protected(protected: Protected, keys: Keys, system_title: bytes | None = None) -> bytes:
    """The plain APDU inside; the tag is checked (CipherError) when the APDU has one.

    `system_title` is the sender's, needed for service-specific APDUs (from the AARE)."""
    iv = _iv(protected.system_title or system_title or b"", protected.invocation_counter)
    head = bytes([protected.security_control])
    if protected.authenticated and len(protected.payload) < TAG_BYTES:
        raise FrameError("authenticated APDU shorter than its tag", 0)
    if protected.authenticated and not keys.authentication:
        raise CipherError("an authenticated APDU needs the authentication key")
    try:
        if protected.encrypted and protected.authenticated:
            return _gcm_open(keys, iv, head + keys.authentication, protected.payload)
        if protected.encrypted:
            return _ctr(keys.encryption, iv, protected.payload)
        if protected.authenticated:
            plain, tag = protected.payload[:-TAG_BYTES], protected.payload[-TAG_BYTES:]
            if gmac(keys, iv, head + keys.authentication + plain) != tag:
                raise CipherError("GMAC tag does not verify")
            return plain
    except InvalidTag:
        raise CipherError("GCM tag does not verify (wrong key or damaged frame)") from None
    return protected.payload  # security control without either bit: plain inside a wrapper


def seal(plain: bytes, keys: Keys, system_title: bytes, counter: int, control: int,
         tag: int = GENERAL_GLO_CIPHERING) -> bytes:
    """The ciphered APDU for `plain` (the inverse of parse_protected + open_protected)."""
    iv = _iv(system_title, counter)
    head = bytes([control])
    if control & SC_ENCRYPTED and control & SC_AUTHENTICATED:
        body = AESGCM(keys.encryption).encrypt(iv, plain, head + keys.authentication)
        body = body[:len(plain) + TAG_BYTES]  # DLMS keeps 12 of the 16 tag bytes
    elif control & SC_ENCRYPTED:
        body = _ctr(keys.encryption, iv, plain)
    elif control & SC_AUTHENTICATED:
        body = plain + gmac(keys, iv, head + keys.authentication + plain)
    else:
        body = plain
    content = head + counter.to_bytes(4, "big") + body
    title = b"" if tag not in (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING) else (
        encode_length(len(system_title)) + system_title)
    return bytes([tag]) + title + encode_length(len(content)) + content


def _gcm_open(keys: Keys, iv: bytes, aad: bytes, payload: bytes) -> bytes:
    tag = payload[-TAG_BYTES:]
    decryptor = Cipher(algorithms.AES(keys.encryption),
                       modes.GCM(iv, tag, min_tag_length=TAG_BYTES)).decryptor()
    decryptor.authenticate_additional_data(aad)
    return decryptor.update(payload[:-TAG_BYTES]) + decryptor.finalize()


def _ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CTR(iv + _CTR_FIRST_BLOCK)).decryptor()
    return cipher.update(data) + cipher.finalize()


def gmac(keys: Keys, iv: bytes, aad: bytes) -> bytes:
    """GCM over no plaintext: the 12-byte tag of `aad`."""
    return AESGCM(keys.encryption).encrypt(iv, b"", aad)[:TAG_BYTES]


def hls_gmac_response(keys: Keys, system_title: bytes, counter: int, challenge: bytes,
                      control: int = SC_AUTHENTICATED) -> bytes:
    """HLS mechanism 5: f(challenge) = SC || IC || GMAC(SC || AK || challenge), with the IV of
    the side that answers (its system title and invocation counter)."""
    tag = gmac(keys, _iv(system_title, counter), bytes([control]) + keys.authentication
               + challenge)
    return bytes([control]) + counter.to_bytes(4, "big") + tag


def hls_gmac_verify(keys: Keys, system_title: bytes, challenge: bytes, answer: bytes) -> int:
    """Check the peer's f(challenge); returns its invocation counter, else CipherError."""
    if len(answer) != 1 + 4 + TAG_BYTES:
        raise CipherError(f"HLS-GMAC answer of {len(answer)} bytes, not 17")
    counter = int.from_bytes(answer[1:5], "big")
    expected = hls_gmac_response(keys, system_title, counter, challenge, answer[0])
    if expected != answer:
        raise CipherError("HLS-GMAC answer does not verify")
    return counter


class InvocationCounterGuard:
    """Refuses a ciphered APDU whose invocation counter is not above the last accepted one
    (a replay, or an old capture). `load()` gives the last counter kept (None: none yet) and
    `store(counter)` keeps a new one; storage wiring comes from outside."""

    def __init__(self, load: Callable[[], int | None], store: Callable[[int], None]) -> None:
        self._load, self._store = load, store

    def check(self, counter: int) -> None:
        last = self._load()
        if last is not None and counter <= last:
            raise ReplayRefused(f"invocation counter {counter} is not above {last}")

    def accept(self, counter: int) -> None:
        """Call after the APDU verified: the counter becomes the one to beat."""
        self.check(counter)
        self._store(counter)
