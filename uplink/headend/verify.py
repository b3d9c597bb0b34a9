"""Verify a gateway batch: COSE signature against the enrolled key, then payload shape."""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from uplink.codec import BatchPayload, Unavailable, decode_batch_payload, decode_unavailable
from uplink.cose import parse_sign1, verify_sign1
from uplink.errors import BadMessage, BadSignature

# Above any gateway's configurable cap (64 KiB default) with room; larger is refused unread.
MAX_BATCH_BYTES: Final = 1024 * 1024
# An unavailable record is a range and a hash: anything larger is refused unread.
MAX_UNAVAILABLE_BYTES: Final = 4096


@dataclass(frozen=True, slots=True)
class VerifiedBatch:
    payload: BatchPayload
    sha256: bytes
    raw: bytes


def _verified_payload(raw: bytes, enrolled: Mapping[str, Ed25519PublicKey], max_bytes: int,
                      what: str) -> tuple[str, bytes]:
    msg = parse_sign1(raw, max_bytes=max_bytes)
    gw = msg.kid.decode("utf-8", errors="replace")
    key = enrolled.get(gw)
    if key is None:
        raise BadSignature(f"{what} from gateway {gw!r}: not enrolled")
    return gw, verify_sign1(msg, key)


def verify_batch(raw: bytes, enrolled: Mapping[str, Ed25519PublicKey]) -> VerifiedBatch:
    """Check signature (key chosen by kid), payload shape and that payload gw equals kid."""
    gw, data = _verified_payload(raw, enrolled, MAX_BATCH_BYTES, "batch")
    payload = decode_batch_payload(data)
    if payload.gw != gw:
        raise BadMessage(f"batch signed by {gw!r} claims gateway {payload.gw!r}")
    return VerifiedBatch(payload, hashlib.sha256(raw).digest(), raw)


def verify_unavailable(raw: bytes, enrolled: Mapping[str, Ed25519PublicKey]) -> Unavailable:
    """Same checks for a gateway's `unavailable` record."""
    gw, data = _verified_payload(raw, enrolled, MAX_UNAVAILABLE_BYTES, "unavailable record")
    gone = decode_unavailable(data)
    if gone.gw != gw:
        raise BadMessage(f"unavailable record signed by {gw!r} claims gateway {gone.gw!r}")
    return gone
