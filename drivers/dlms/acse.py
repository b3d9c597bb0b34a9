"""Association APDUs (IEC 62056-5-3 9.3, BER-coded ACSE): AARQ, AARE, RLRQ, RLRE, and the
xDLMS InitiateRequest / InitiateResponse with the conformance block they carry.

Only logical-name referencing is built; a short-name context is decoded and named. Unknown
context-specific fields are skipped (the standard lets an AARQ carry more than a meter needs),
but every length is checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from drivers.dlms.axdr import Reader, encode_length
from drivers.errors import FrameError

AARQ: Final = 0x60
AARE: Final = 0x61
RLRQ: Final = 0x62
RLRE: Final = 0x63
INITIATE_REQUEST: Final = 0x01
INITIATE_RESPONSE: Final = 0x08
CONFIRMED_SERVICE_ERROR: Final = 0x0E
DLMS_VERSION: Final = 6
LN_VAA_NAME: Final = 0x0007  # the virtual application's name under LN referencing

_CONTEXT_PREFIX: Final = bytes.fromhex("60857405080101")[:-1]  # 2.16.756.5.8.1.x
_MECHANISM_PREFIX: Final = bytes.fromhex("60857405080200")[:-1]  # 2.16.756.5.8.2.x
CONTEXTS: Final = {1: "logical_name", 2: "short_name", 3: "logical_name_ciphered",
                   4: "short_name_ciphered"}
MECHANISMS: Final = {0: "none", 1: "lls", 2: "hls", 3: "hls_md5", 4: "hls_sha1",
                     5: "hls_gmac", 6: "hls_sha256", 7: "hls_ecdsa"}
ASSOCIATION_RESULTS: Final = {0: "accepted", 1: "rejected_permanent", 2: "rejected_transient"}
USER_DIAGNOSTICS: Final = {
    0: "null", 1: "no_reason_given", 2: "application_context_name_not_supported",
    11: "authentication_mechanism_name_not_recognised",
    12: "authentication_mechanism_name_required", 13: "authentication_failure",
    14: "authentication_required"}

# conformance block bits, bit 0 first (the most significant bit of the 24)
CONFORMANCE_BITS: Final = (
    "reserved_zero", "general_protection", "general_block_transfer", "read", "write",
    "unconfirmed_write", "delta_value_encoding", "reserved_seven", "attribute0_supported_with_set",
    "priority_mgmt_supported", "attribute0_supported_with_get", "block_transfer_with_get_or_read",
    "block_transfer_with_set_or_write", "block_transfer_with_action", "multiple_references",
    "information_report", "data_notification", "access", "parameterized_access", "get", "set",
    "selective_access", "event_notification", "action")
_CONFORMANCE_TAG: Final = b"\x5f\x1f"  # [APPLICATION 31] IMPLICIT BIT STRING (SIZE(24))


def conformance_names(block: int) -> tuple[str, ...]:
    return tuple(name for i, name in enumerate(CONFORMANCE_BITS) if block >> (23 - i) & 1)


def conformance_block(names: tuple[str, ...] | list[str]) -> int:
    return sum(1 << (23 - CONFORMANCE_BITS.index(n)) for n in names)


def _encode_conformance(block: int) -> bytes:
    return _CONFORMANCE_TAG + b"\x04\x00" + block.to_bytes(3, "big")


def _read_conformance(reader: Reader) -> int:
    if reader.take(2, "conformance tag") != _CONFORMANCE_TAG:
        raise FrameError("conformance block tag is not 5F 1F", reader.pos - 2)
    if reader.take(2, "conformance length") != b"\x04\x00":
        raise FrameError("conformance block is not 24 bits", reader.pos - 2)
    return int.from_bytes(reader.take(3, "conformance"), "big")


@dataclass(frozen=True, slots=True)
class InitiateRequest:
    conformance: int
    max_receive_pdu: int = 0xFFFF
    dedicated_key: bytes | None = field(default=None, repr=False)
    response_allowed: bool = True
    quality_of_service: int | None = None
    dlms_version: int = DLMS_VERSION

    def build(self) -> bytes:
        out = bytes([INITIATE_REQUEST])
        key = self.dedicated_key
        out += b"\x00" if key is None else b"\x01" + encode_length(len(key)) + key
        out += b"\x00" if self.response_allowed else b"\x01\x00"
        qos = self.quality_of_service
        out += b"\x00" if qos is None else bytes([1, qos])
        return (out + bytes([self.dlms_version]) + _encode_conformance(self.conformance)
                + self.max_receive_pdu.to_bytes(2, "big"))

    @classmethod
    def parse(cls, raw: bytes) -> InitiateRequest:
        reader = Reader(raw, 1)
        key = reader.sized("dedicated key") if reader.byte("dedicated key flag") else None
        # response-allowed is BOOLEAN DEFAULT TRUE: 00 means "the default", 01 xx gives it
        allowed = not reader.byte("response-allowed flag") or reader.byte("response-allowed")
        qos = reader.byte("quality of service") if reader.byte("QoS flag") else None
        version = reader.byte("DLMS version")
        block = _read_conformance(reader)
        size = int.from_bytes(reader.take(2, "max receive PDU size"), "big")
        _end(reader, "InitiateRequest")
        return cls(block, size, key, bool(allowed), qos, version)


@dataclass(frozen=True, slots=True)
class InitiateResponse:
    conformance: int
    max_receive_pdu: int
    quality_of_service: int | None = None
    dlms_version: int = DLMS_VERSION
    vaa_name: int = LN_VAA_NAME

    def build(self) -> bytes:
        qos = b"\x00" if self.quality_of_service is None else bytes([1, self.quality_of_service])
        return (bytes([INITIATE_RESPONSE]) + qos + bytes([self.dlms_version])
                + _encode_conformance(self.conformance)
                + self.max_receive_pdu.to_bytes(2, "big") + self.vaa_name.to_bytes(2, "big"))

    @classmethod
    def parse(cls, raw: bytes) -> InitiateResponse:
        reader = Reader(raw, 1)
        qos = reader.byte("quality of service") if reader.byte("QoS flag") else None
        version = reader.byte("DLMS version")
        block = _read_conformance(reader)
        size = int.from_bytes(reader.take(2, "max receive PDU size"), "big")
        vaa = int.from_bytes(reader.take(2, "VAA name"), "big")
        _end(reader, "InitiateResponse")
        return cls(block, size, qos, version, vaa)


def _end(reader: Reader, what: str) -> None:
    if reader.left:
        raise FrameError(f"{reader.left} bytes after the {what}", reader.pos)


# ---- BER helpers -----------------------------------------------------------------------------

def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + encode_length(len(value)) + value


def _fields(raw: bytes, expected_tag: int, what: str) -> dict[int, bytes]:
    """The context-specific fields of an ACSE APDU, by tag (each checked against its length)."""
    reader = Reader(raw)
    if reader.byte(what) != expected_tag:
        raise FrameError(f"{what} does not start with 0x{expected_tag:02X}", 0)
    body = Reader(reader.sized(what))
    _end(reader, what)
    out: dict[int, bytes] = {}
    while body.left:
        tag = body.byte(f"{what} field tag")
        out[tag] = body.sized(f"{what} field 0x{tag:02X}")
    return out


def _oid_last(value: bytes, prefix: bytes, what: str) -> int:
    """The last arc of a DLMS UA object identifier (`06 07 60 85 74 05 08 0x 0y`)."""
    if len(value) != 9 or value[:2] != b"\x06\x07" or value[2:8] != prefix:
        raise FrameError(f"{what} is not a DLMS UA object identifier", 0)
    return value[8]


def _integer(value: bytes, what: str) -> int:
    if len(value) != 3 or value[0] != 0x02 or value[1] != 1:
        raise FrameError(f"{what} is not a one-byte INTEGER", 0)
    return value[2]


def _octets(value: bytes, what: str) -> bytes:
    """An OCTET STRING or a GraphicString/CHOICE-wrapped one (`04 len ...` / `80 len ...`)."""
    reader = Reader(value)
    reader.byte(what)
    inner = reader.sized(what)
    _end(reader, what)
    return inner


def _mechanism(value: bytes) -> int:
    if len(value) != 7 or value[:6] != _MECHANISM_PREFIX:
        raise FrameError("mechanism name is not a DLMS UA mechanism", 0)
    return value[6]


_ACSE_REQUIREMENTS_AUTH: Final = b"\x07\x80"  # BIT STRING, 7 unused bits, bit 0: authentication
_CONTEXT_FIELD: Final = 0xA1


def _context(value: bytes) -> int:
    number = _oid_last(value, _CONTEXT_PREFIX, "application context name")
    if number not in CONTEXTS:
        raise FrameError(f"application context {number} is not a DLMS one", 0)
    return number


def _auth_fields(mechanism: int | None, value: bytes | None, req_tag: int, mech_tag: int,
                 value_tag: int) -> bytes:
    if mechanism is None:
        return b""
    out = _tlv(req_tag, _ACSE_REQUIREMENTS_AUTH) + _tlv(mech_tag, _MECHANISM_PREFIX
                                                         + bytes([mechanism]))
    return out + (b"" if value is None else _tlv(value_tag, _tlv(0x80, value)))


@dataclass(frozen=True, slots=True)
class Aarq:
    """AARQ: what the client proposes. `user_information` is the InitiateRequest's bytes, or
    a glo-initiate-request's when ciphered (see security.py)."""

    context: int = 1
    calling_ap_title: bytes | None = None  # the client's system title
    mechanism: int | None = None  # MECHANISMS key; None: no authentication fields
    authentication_value: bytes | None = field(default=None, repr=False)  # password / CtoS
    user_information: bytes | None = None

    def build(self) -> bytes:
        body = _tlv(_CONTEXT_FIELD, b"\x06\x07" + _CONTEXT_PREFIX + bytes([self.context]))
        if self.calling_ap_title is not None:
            body += _tlv(0xA6, _tlv(0x04, self.calling_ap_title))
        body += _auth_fields(self.mechanism, self.authentication_value, 0x8A, 0x8B, 0xAC)
        if self.user_information is not None:
            body += _tlv(0xBE, _tlv(0x04, self.user_information))
        return _tlv(AARQ, body)

    @classmethod
    def parse(cls, raw: bytes) -> Aarq:
        f = _fields(raw, AARQ, "AARQ")
        if _CONTEXT_FIELD not in f:
            raise FrameError("AARQ without an application context name", 0)
        return cls(_context(f[_CONTEXT_FIELD]),
                   _octets(f[0xA6], "calling AP title") if 0xA6 in f else None,
                   _mechanism(f[0x8B]) if 0x8B in f else None,
                   _octets(f[0xAC], "authentication value") if 0xAC in f else None,
                   _octets(f[0xBE], "user information") if 0xBE in f else None)


@dataclass(frozen=True, slots=True)
class Aare:
    """AARE: the server's answer. `diagnostic_source` 1 is the ACSE service user, 2 the
    provider."""

    result: int = 0
    diagnostic: int = 0
    diagnostic_source: int = 1
    context: int = 1
    responding_ap_title: bytes | None = None  # the meter's system title
    mechanism: int | None = None
    authentication_value: bytes | None = field(default=None, repr=False)  # StoC challenge
    user_information: bytes | None = None

    @property
    def accepted(self) -> bool:
        return self.result == 0

    def reason(self) -> str:
        """`accepted`, or the result with the user diagnostic, for an error message."""
        result = ASSOCIATION_RESULTS.get(self.result, f"result_{self.result}")
        if self.accepted:
            return result
        names = USER_DIAGNOSTICS if self.diagnostic_source == 1 else {}
        return f"{result}: {names.get(self.diagnostic, f'diagnostic_{self.diagnostic}')}"

    def build(self) -> bytes:
        body = _tlv(_CONTEXT_FIELD, b"\x06\x07" + _CONTEXT_PREFIX + bytes([self.context]))
        body += _tlv(0xA2, bytes([0x02, 1, self.result]))
        body += _tlv(0xA3, _tlv(0xA0 | self.diagnostic_source, bytes([0x02, 1,
                                                                       self.diagnostic])))
        if self.responding_ap_title is not None:
            body += _tlv(0xA4, _tlv(0x04, self.responding_ap_title))
        body += _auth_fields(self.mechanism, self.authentication_value, 0x88, 0x89, 0xAA)
        if self.user_information is not None:
            body += _tlv(0xBE, _tlv(0x04, self.user_information))
        return _tlv(AARE, body)

    @classmethod
    def parse(cls, raw: bytes) -> Aare:
        f = _fields(raw, AARE, "AARE")
        if _CONTEXT_FIELD not in f or 0xA2 not in f or 0xA3 not in f:
            raise FrameError("AARE without context name, result or diagnostic", 0)
        source, diagnostic = _diagnostic(f[0xA3])
        return cls(_integer(f[0xA2], "association result"), diagnostic, source,
                   _context(f[_CONTEXT_FIELD]),
                   _octets(f[0xA4], "responding AP title") if 0xA4 in f else None,
                   _mechanism(f[0x89]) if 0x89 in f else None,
                   _octets(f[0xAA], "authentication value") if 0xAA in f else None,
                   _octets(f[0xBE], "user information") if 0xBE in f else None)


def _diagnostic(value: bytes) -> tuple[int, int]:
    if len(value) != 5 or value[0] not in (0xA1, 0xA2) or value[1] != 3:
        raise FrameError("result source diagnostic is not [1] or [2] INTEGER", 0)
    return value[0] & 0x0F, _integer(value[2:], "diagnostic")


@dataclass(frozen=True, slots=True)
class Release:
    """RLRQ (request) or RLRE (response): reason and optional user information."""

    tag: int = RLRQ
    reason: int | None = 0
    user_information: bytes | None = None

    def build(self) -> bytes:
        body = b"" if self.reason is None else _tlv(0x80, bytes([self.reason]))
        if self.user_information is not None:
            body += _tlv(0xBE, _tlv(0x04, self.user_information))
        return _tlv(self.tag, body)

    @classmethod
    def parse(cls, raw: bytes) -> Release:
        if not raw or raw[0] not in (RLRQ, RLRE):
            raise FrameError("not an RLRQ / RLRE", 0)
        f = _fields(raw, raw[0], "release")
        reason = f.get(0x80)
        if reason is not None and len(reason) != 1:
            raise FrameError("release reason is not one byte", 0)
        return cls(raw[0], None if reason is None else reason[0],
                   _octets(f[0xBE], "user information") if 0xBE in f else None)
