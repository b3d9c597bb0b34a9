"""Ciphered DLMS vectors built here byte by byte, independently of drivers/dlms.

Nothing in this module imports drivers/dlms: the APDUs follow the Green Book layout (DLMS UA
1000-2, security suite 0 = AES-GCM-128) and are sealed with `cryptography`'s AESGCM, so a test
that opens them with drivers/dlms checks the implementation against the layout, not against
itself. Keys, system titles, counters and plaintexts are this project's own.

- general-glo-ciphering: DB, length of the system title (08), system title, length, then the
  security header SC || IC (4 bytes) and the protected bytes;
- service-specific glo-xxx: tag, length, SC || IC || protected bytes (the system title is the
  association's, not in the APDU);
- IV = system title (8) || invocation counter (4);
- SC 0x30 (authenticated and encrypted): ciphertext || the first 12 bytes of the GCM tag over
  AAD = SC || AK; SC 0x20 (encrypted only): the ciphertext alone; SC 0x10 (authenticated
  only): plaintext || the 12-byte tag of GCM over no plaintext with AAD = SC || AK || plaintext;
- HLS-GMAC f(challenge) = SC || IC || GMAC with AAD = SC || AK || challenge;
- the TCP/UDP wrapper: version 0x0001, source wPort, destination wPort, length (2 bytes each).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

EK: Final = bytes.fromhex("7C1E55A3094BD2F08E6A13C7B94D2E61")  # global unicast encryption key
AK: Final = bytes.fromhex("E2093B7F4C81A65D10F3C8297AB6E45D")  # authentication key
METER_TITLE: Final = b"GWM" + bytes.fromhex("0A1B2C3D4E")  # the meter's system title
CLIENT_TITLE: Final = b"GWC" + bytes.fromhex("0000000101")  # the head end's
TAG_BYTES: Final = 12
SC_AUTHENTICATED: Final = 0x10
SC_ENCRYPTED: Final = 0x20
SC_BOTH: Final = 0x30
GENERAL_GLO: Final = 0xDB
GLO_INITIATE_REQUEST: Final = 0x21
GLO_INITIATE_RESPONSE: Final = 0x28
GLO_GET_REQUEST: Final = 0xC8
WRAPPER_VERSION: Final = 1


def length(n: int) -> bytes:
    """A-XDR / BER length: one byte below 128, else 0x81 n or 0x82 nn."""
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    return b"\x82" + n.to_bytes(2, "big")


def tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + length(len(value)) + value


def nonce(title: bytes, counter: int) -> bytes:
    assert len(title) == 8
    return title + counter.to_bytes(4, "big")


def protect(plain: bytes, title: bytes, counter: int, control: int = SC_BOTH,
            ek: bytes = EK, ak: bytes = AK) -> bytes:
    """SC || IC || the protected bytes for `plain`."""
    iv = nonce(title, counter)
    aad = bytes([control]) + ak
    if control & SC_BOTH == SC_BOTH:
        sealed = AESGCM(ek).encrypt(iv, plain, aad)  # ciphertext || 16-byte tag
        body = sealed[:len(plain)] + sealed[len(plain):len(plain) + TAG_BYTES]
    elif control & SC_ENCRYPTED:
        body = AESGCM(ek).encrypt(iv, plain, aad)[:len(plain)]  # counter mode, tag dropped
    elif control & SC_AUTHENTICATED:
        body = plain + AESGCM(ek).encrypt(iv, b"", aad + plain)[:TAG_BYTES]
    else:
        body = plain
    return bytes([control]) + counter.to_bytes(4, "big") + body


def general_glo(plain: bytes, title: bytes, counter: int, control: int = SC_BOTH,
                ek: bytes = EK, ak: bytes = AK) -> bytes:
    """general-glo-ciphering: DB 08 system-title, length, SC || IC || protected bytes."""
    content = protect(plain, title, counter, control, ek, ak)
    return bytes([GENERAL_GLO, len(title)]) + title + length(len(content)) + content


def service_glo(tag: int, plain: bytes, title: bytes, counter: int, control: int = SC_BOTH,
                ek: bytes = EK, ak: bytes = AK) -> bytes:
    """A service-specific glo- APDU: tag, length, SC || IC || protected bytes."""
    return tlv(tag, protect(plain, title, counter, control, ek, ak))


def hls_gmac(challenge: bytes, title: bytes, counter: int, control: int = SC_AUTHENTICATED,
             ek: bytes = EK, ak: bytes = AK) -> bytes:
    """HLS mechanism 5 f(challenge): SC || IC || GMAC(SC || AK || challenge), 17 bytes."""
    tag = AESGCM(ek).encrypt(nonce(title, counter), b"", bytes([control]) + ak + challenge)
    return bytes([control]) + counter.to_bytes(4, "big") + tag[:TAG_BYTES]


def wrapped(apdu: bytes, source: int = 0x0001, destination: int = 0x0066) -> bytes:
    """The TCP/UDP wrapper PDU around `apdu` (the same header on both transports)."""
    return (WRAPPER_VERSION.to_bytes(2, "big") + source.to_bytes(2, "big")
            + destination.to_bytes(2, "big") + len(apdu).to_bytes(2, "big") + apdu)


def flip(raw: bytes, at: int, bit: int = 0x01) -> bytes:
    damaged = bytearray(raw)
    damaged[at] ^= bit
    return bytes(damaged)


# ---- plaintexts -------------------------------------------------------------------------------

def obis(a: int, b: int, c: int, d: int, e: int, f: int = 255) -> bytes:
    """The logical name as the A-XDR octet-string Data: 09 06 A B C D E F."""
    return bytes([0x09, 0x06, a, b, c, d, e, f])


def register(name: bytes, value: bytes, scaler: int, unit: int) -> bytes:
    """One self-describing push element: structure {logical name, value, {scaler, unit}}."""
    scaler_unit = b"\x02\x02\x0f" + scaler.to_bytes(1, "big", signed=True) + bytes([0x16, unit])
    return b"\x02\x03" + name + value + scaler_unit


# 2026-12-04 (a Friday, day 5) 19:45:30.00, deviation -60 min, clock status 0x00
PUSH_DATE_TIME: Final = bytes.fromhex("07EA0C0405132D1E00FFC400")
PUSH_REGISTERS: Final = (
    register(obis(1, 0, 1, 8, 0), b"\x06" + (12345678).to_bytes(4, "big"), 0, 30),  # Wh
    register(obis(1, 0, 1, 7, 0), b"\x06" + (1520).to_bytes(4, "big"), 0, 27),  # W
    register(obis(1, 0, 32, 7, 0), b"\x12" + (2315).to_bytes(2, "big"), -1, 35),  # V
    register(obis(1, 0, 31, 7, 0), b"\x10" + (1234).to_bytes(2, "big"), -2, 33),  # A
)
# data-notification: 0F, long-invoke-id-and-priority, date-time (octet string 0C + 12 bytes),
# notification-body (an array of the registers)
PUSH: Final = (b"\x0f" + (0x00000042).to_bytes(4, "big") + b"\x0c" + PUSH_DATE_TIME
               + bytes([0x01, len(PUSH_REGISTERS)]) + b"".join(PUSH_REGISTERS))
# what the push says, exactly: (OBIS, value as text, unit, scaler)
PUSH_OBJECTS: Final = (
    {"obis": "1-0:1.8.0.255", "value": "12345678", "unit": "Wh", "scaler": 0},
    {"obis": "1-0:1.7.0.255", "value": "1520", "unit": "W", "scaler": 0},
    {"obis": "1-0:32.7.0.255", "value": "231.5", "unit": "V", "scaler": -1},
    {"obis": "1-0:31.7.0.255", "value": "12.34", "unit": "A", "scaler": -2},
)
PUSH_SAMPLES: Final = {"import_active_energy": (Decimal("12345.678"), "kWh"),
                       "active_power": (Decimal(1520), "W"),
                       "voltage_l1": (Decimal("231.5"), "V"),
                       "current_l1": (Decimal("12.34"), "A")}

# get-request-normal: C0 01, invoke-id-and-priority C1, class 3 (register), 1-0:1.8.0.255,
# attribute 2, no selective access
GET_REQUEST: Final = bytes.fromhex("C001C1" "0003" "0100010800FF" "02" "00")

# conformance: get, set, action, selective access, block transfer with get, multiple references
CONFORMANCE: Final = 0x001E1D
# initiate-request: 01, no dedicated key, response-allowed default, no QoS, version 6,
# conformance 5F1F 04 00 + 3 bytes, max receive PDU size
INITIATE_REQUEST: Final = (b"\x01\x00\x00\x00\x06\x5f\x1f\x04\x00"
                           + CONFORMANCE.to_bytes(3, "big") + (1024).to_bytes(2, "big"))
# initiate-response: 08, no QoS, version 6, conformance, max receive PDU size, VAA name 0007
INITIATE_RESPONSE: Final = (b"\x08\x00\x06\x5f\x1f\x04\x00" + CONFORMANCE.to_bytes(3, "big")
                            + (512).to_bytes(2, "big") + b"\x00\x07")

CLIENT_CHALLENGE: Final = b"CtoS-7q2"  # CtoS, 8 bytes
SERVER_CHALLENGE: Final = bytes.fromhex("9F3A61D20C7B58E4")  # StoC
LN_CIPHERED: Final = bytes.fromhex("060760857405080103")  # application context 2.16.756.5.8.1.3
HLS_GMAC: Final = bytes.fromhex("60857405080205")  # mechanism name 2.16.756.5.8.2.5
AUTH_REQUIRED: Final = b"\x07\x80"  # acse-requirements BIT STRING: authentication


def aarq(user_information: bytes) -> bytes:
    """AARQ (60): LN referencing with ciphering, calling AP title = the client's system
    title, HLS-GMAC with its CtoS challenge, user-information (BE, 04 octet string)."""
    return tlv(0x60, tlv(0xA1, LN_CIPHERED) + tlv(0xA6, tlv(0x04, CLIENT_TITLE))
               + tlv(0x8A, AUTH_REQUIRED) + tlv(0x8B, HLS_GMAC)
               + tlv(0xAC, tlv(0x80, CLIENT_CHALLENGE)) + tlv(0xBE, tlv(0x04, user_information)))


def aare(user_information: bytes) -> bytes:
    """AARE (61): accepted, user diagnostic 14 (authentication required), responding AP title
    = the meter's system title, HLS-GMAC with its StoC challenge, user-information."""
    return tlv(0x61, tlv(0xA1, LN_CIPHERED) + tlv(0xA2, b"\x02\x01\x00")
               + tlv(0xA3, tlv(0xA1, b"\x02\x01\x0e")) + tlv(0xA4, tlv(0x04, METER_TITLE))
               + tlv(0x88, AUTH_REQUIRED) + tlv(0x89, HLS_GMAC)
               + tlv(0xAA, tlv(0x80, SERVER_CHALLENGE)) + tlv(0xBE, tlv(0x04, user_information)))


def rlre(user_information: bytes) -> bytes:
    """RLRE (63): reason normal (80 01 00), user-information."""
    return tlv(0x63, tlv(0x80, b"\x00") + tlv(0xBE, tlv(0x04, user_information)))


@dataclass(frozen=True, slots=True)
class Vector:
    """One ciphered message as the decoder gets it, with what is inside."""

    name: str
    frames: tuple[bytes, ...]
    plaintext: bytes  # the plain APDU (for an association: its user-information)
    counter: int
    control: int = SC_BOTH
    system_title: bytes | None = None  # to give the decoder (service-specific APDUs)

    @property
    def frames_hex(self) -> list[str]:
        return [f.hex() for f in self.frames]


def pushes(count: int = 3, first: int = 0x1000) -> list[bytes]:
    """UDP/TCP-wrapped general-glo-ciphering pushes with rising invocation counters."""
    return [wrapped(general_glo(PUSH, METER_TITLE, first + n)) for n in range(count)]


VECTORS: Final = (
    Vector("wrapped-push", (pushes(1)[0],), PUSH, 0x1000),
    Vector("bare-push", (general_glo(PUSH, METER_TITLE, 7),), PUSH, 7),
    Vector("push-authenticated-only",
           (general_glo(PUSH, METER_TITLE, 8, SC_AUTHENTICATED),), PUSH, 8, SC_AUTHENTICATED),
    Vector("push-encrypted-only",
           (general_glo(PUSH, METER_TITLE, 9, SC_ENCRYPTED),), PUSH, 9, SC_ENCRYPTED),
    Vector("general-glo-get-request", (general_glo(GET_REQUEST, CLIENT_TITLE, 0x01020304),),
           GET_REQUEST, 0x01020304),
    Vector("glo-get-request",
           (service_glo(GLO_GET_REQUEST, GET_REQUEST, CLIENT_TITLE, 0x01020305),),
           GET_REQUEST, 0x01020305, system_title=CLIENT_TITLE),
    Vector("aarq-glo-initiate-request",
           (aarq(service_glo(GLO_INITIATE_REQUEST, INITIATE_REQUEST, CLIENT_TITLE, 1)),),
           INITIATE_REQUEST, 1),
    Vector("aare-glo-initiate-response",
           (aare(service_glo(GLO_INITIATE_RESPONSE, INITIATE_RESPONSE, METER_TITLE, 1)),),
           INITIATE_RESPONSE, 1),
    Vector("rlre-glo-initiate-response",
           (rlre(service_glo(GLO_INITIATE_RESPONSE, INITIATE_RESPONSE, METER_TITLE, 2)),),
           INITIATE_RESPONSE, 2, system_title=METER_TITLE),
)
