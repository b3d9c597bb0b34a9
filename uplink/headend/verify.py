"""Verify a gateway batch: COSE signature against the enrolled key, then payload shape."""

import hashlib
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from uplink.codec import BatchPayload, decode_batch_payload
from uplink.cose import parse_sign1, verify_sign1
from uplink.errors import BadMessage, BadSignature

# Above any gateway's configurable cap (64 KiB default) with room; larger is refused unread.
MAX_BATCH_BYTES: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class VerifiedBatch:
    payload: BatchPayload
    sha256: bytes
    raw: bytes


def verify_batch(raw: bytes, enrolled: dict[str, Ed25519PublicKey]) -> VerifiedBatch:
    """Check signature (key chosen by kid), payload shape and that payload gw equals kid."""
    msg = parse_sign1(raw, max_bytes=MAX_BATCH_BYTES)
    gw = msg.kid.decode("utf-8", errors="replace")
    key = enrolled.get(gw)
    if key is None:
        raise BadSignature(f"batch from gateway {gw!r}: not enrolled")
    payload = decode_batch_payload(verify_sign1(msg, key))
    if payload.gw != gw:
        raise BadMessage(f"batch signed by {gw!r} claims gateway {payload.gw!r}")
    return VerifiedBatch(payload, hashlib.sha256(raw).digest(), raw)
