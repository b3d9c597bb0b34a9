"""COSE_Sign1 (RFC 9052, CBOR tag 18) with EdDSA / Ed25519, the only signature the uplink uses."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from uplink.errors import BadMessage, BadSignature

COSE_SIGN1_TAG = 18
ALG_EDDSA = -8
HEADER_ALG = 1
HEADER_KID = 4
PROTECTED_EDDSA = cbor2.dumps({HEADER_ALG: ALG_EDDSA})
ED25519_SIGNATURE_BYTES = 64

# Everything cbor2 may raise on hostile input; all of it becomes BadMessage.
CBOR_DECODE_ERRORS = (
    cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError,
    KeyError, IndexError, MemoryError, AttributeError, LookupError,
)


@dataclass(frozen=True, slots=True)
class Sign1:
    """A parsed (not yet verified) COSE_Sign1 message."""

    protected: bytes
    kid: bytes
    payload: bytes
    signature: bytes


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload])


def sign1(payload: bytes, key: Ed25519PrivateKey, kid: bytes) -> bytes:
    """Wrap `payload` in a tagged COSE_Sign1 signed with `key`, `kid` in the unprotected header."""
    signature = key.sign(_sig_structure(PROTECTED_EDDSA, payload))
    return cbor2.dumps(
        cbor2.CBORTag(COSE_SIGN1_TAG, [PROTECTED_EDDSA, {HEADER_KID: kid}, payload, signature])
    )


def loads_strict(data: bytes, what: str) -> Any:
    """cbor2.loads that turns every decoding failure into BadMessage naming `what`."""
    try:
        return cbor2.loads(data)
    except CBOR_DECODE_ERRORS as exc:
        raise BadMessage(f"{what}: malformed CBOR ({exc.__class__.__name__}: {exc})") from None


def parse_sign1(data: bytes, *, max_bytes: int) -> Sign1:
    """Parse a tagged COSE_Sign1 message without verifying it; BadMessage on any defect."""
    if len(data) > max_bytes:
        raise BadMessage(f"COSE_Sign1: {len(data)} bytes, above the limit of {max_bytes}")
    obj = loads_strict(data, "COSE_Sign1")
    if not isinstance(obj, cbor2.CBORTag) or obj.tag != COSE_SIGN1_TAG:
        raise BadMessage("COSE_Sign1: not a CBOR tag 18 message")
    parts = obj.value
    if not isinstance(parts, list | tuple) or len(parts) != 4:
        raise BadMessage("COSE_Sign1: tag 18 content is not a 4-element array")
    protected, unprotected, payload, signature = parts
    if not all(isinstance(x, bytes) for x in (protected, payload, signature)):
        raise BadMessage("COSE_Sign1: protected, payload and signature must be byte strings")
    if not isinstance(unprotected, Mapping):
        raise BadMessage("COSE_Sign1: unprotected header is not a map")
    header = loads_strict(protected, "COSE_Sign1 protected header") if protected else {}
    if not isinstance(header, Mapping) or header.get(HEADER_ALG) != ALG_EDDSA:
        raise BadMessage("COSE_Sign1: protected header does not declare alg EdDSA (-8)")
    kid = unprotected.get(HEADER_KID, b"")
    if not isinstance(kid, bytes):
        raise BadMessage("COSE_Sign1: kid (header 4) is not a byte string")
    if len(signature) != ED25519_SIGNATURE_BYTES:
        raise BadMessage(f"COSE_Sign1: signature is {len(signature)} bytes, expected 64")
    return Sign1(protected, kid, payload, signature)


def verify_sign1(msg: Sign1, key: Ed25519PublicKey) -> bytes:
    """Return the payload when the signature verifies with `key`; BadSignature otherwise."""
    try:
        key.verify(msg.signature, _sig_structure(msg.protected, msg.payload))
    except InvalidSignature:
        raise BadSignature(f"COSE_Sign1 from kid {msg.kid!r}: signature does not verify") from None
    return msg.payload
