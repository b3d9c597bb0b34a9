"""Answering a head-end that asks again for batches it had acknowledged (restored from a backup).

Acked batches are kept within `[uplink] retain_acked_bytes` and `retain_acked_days`: those still
kept are published again; the ones already dropped are declared once in a signed `unavailable`
record, so the head-end records a known gap and moves on instead of asking forever.
"""

import logging
from dataclasses import dataclass, field
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage import batches
from storage.batches import StoredBatch
from storage.store import Store
from uplink.codec import Unavailable, encode_unavailable
from uplink.cose import sign1
from uplink.mqtt import MqttLink

LOGGER = logging.getLogger(__name__)

MS_PER_DAY: Final = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class ResendPlan:
    """What answers `resend = N` at or below the acked seq."""

    gone: Unavailable | None  # the leading seqs whose bytes were dropped
    batches: list[StoredBatch]  # the kept ones after them, by seq


def plan_resend(store: Store, gw: str, from_seq: int) -> ResendPlan:
    """Kept acked batches from `from_seq` on, and the range before them that is gone (runs in a
    worker thread)."""
    from_seq = max(1, from_seq)
    with store.transaction() as tx:
        acked = batches.acked_seq(tx)
        kept_from = max(from_seq, batches.retained_from(tx))
        gone = None
        if kept_from > from_seq:
            last = min(kept_from, acked + 1) - 1
            sha = batches.batch_sha256(tx, last)
            if sha is not None:
                gone = Unavailable(gw, from_seq, last, sha)
        return ResendPlan(gone, batches.acked_batches(tx, kept_from, acked))


@dataclass(slots=True)
class ResendGuard:
    """Serves a seq again at most once per `interval_s`: the head-end repeats its request with
    the ack of every batch it receives until the answer has arrived (and while a replay is on
    the way each replayed batch's ack asks from the next seq of the same range)."""

    interval_s: float
    _served: list[tuple[int, int, float]] = field(default_factory=list)  # first, last, when

    def allow(self, first: int, last: int, now: float) -> bool:
        """True (and remembered) unless `first` lies in a range served within the interval."""
        self._served = [s for s in self._served if now - s[2] < self.interval_s]
        if any(lo <= first <= hi for lo, hi, _ in self._served):
            return False
        self._served.append((first, last, now))
        return True


def publish_plan(link: MqttLink, topics: dict[str, str], plan: ResendPlan,
                 key: Ed25519PrivateKey, gw: str, acked: int) -> None:
    """Publish a plan: the signed `unavailable` record first, then the kept batches."""
    if plan.gone is not None:
        LOGGER.error("resend_unavailable", extra={"first": plan.gone.first,
                                                  "last": plan.gone.last, "acked": acked})
        signed = sign1(encode_unavailable(plan.gone), key, gw.encode("utf-8"))
        link.publish(topics["unavailable"], signed, announced_only=True)
    for batch in plan.batches:
        link.publish(topics["batch"], batch.data, announced_only=True)
    if plan.batches:
        LOGGER.info("resend_replayed", extra={"first": plan.batches[0].seq,
                                              "last": plan.batches[-1].seq})
