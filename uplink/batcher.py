"""Build the next batch from the outbox: priority order, size cap, signed, durably stored."""

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage import batches
from storage.batches import StoredBatch
from storage.store import Store, Transaction
from uplink.codec import encode_batch_payload_raw, record_item, records_array
from uplink.cose import sign1
from uplink.records import to_wire

LOGGER = logging.getLogger(__name__)
# How many outbox rows to load per build: adapts between these to what fits in one batch.
SCAN_MIN: Final = 64
SCAN_MAX: Final = 20_000
# COSE envelope (tag, headers, kid, 64-byte signature) plus the payload's fixed keys.
ENVELOPE_BYTES: Final = 160
# Compressed size is only known after compressing: a few shrink rounds converge on the cap.
FIT_ATTEMPTS: Final = 6
FIT_MARGIN: Final = 0.97


@dataclass(frozen=True, slots=True)
class Built:
    batch: StoredBatch
    record_ids: list[int]


class Batcher:
    """Turns pending outbox records into signed, hash-chained, stored batches."""

    def __init__(self, store: Store, gateway_id: str, key: Ed25519PrivateKey, *,
                 compress: bool, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.gateway_id = gateway_id
        self.kid = gateway_id.encode("utf-8")
        self.key = key
        self.compress = compress
        self.clock = clock
        self._scan = SCAN_MIN * 4
        self._ratio = 0.5  # compressed / raw, learnt from the last batch

    def build(self, cap: int) -> Built | None:
        """Build, sign and commit the next batch (at most `cap` bytes unless one record is
        larger); None when the outbox has nothing pending."""
        with self.store.transaction() as tx:
            return self.build_in(tx, cap)

    def build_in(self, tx: Transaction, cap: int) -> Built | None:
        """`build` inside the caller's transaction (the readings' group commit): the batch
        is durable when that transaction commits, and only then may it be sent."""
        pending = self.store.pending_outbox(self._scan)
        if not pending:
            return None
        now = self.clock()
        t = int(now)
        items = [cbor2.dumps(record_item(to_wire(r), t * 1000)) for r in pending]
        seq, prev = batches.chain_head(tx)
        seq += 1
        raw, n = self._fit(items, seq, prev, t, cap)
        sha = hashlib.sha256(raw).digest()
        # built to be sent at once: sent_ms goes in this insert, not in an update of its own
        batches.add_batch(tx, seq, raw, sha, n, int(now * 1000), sent_ms=int(now * 1000))
        ids = [r.id for r in pending[:n]]
        self.store.assign_to_batch(tx, ids, seq)
        self._adapt_scan(n, len(pending))
        LOGGER.debug("batch_built", extra={"seq": seq, "records": n, "bytes": len(raw)})
        return Built(StoredBatch(seq, raw, sha, n, int(now * 1000), None, None), ids)

    def _sign(self, items: list[bytes], seq: int, prev: bytes, t: int) -> bytes:
        payload = encode_batch_payload_raw(self.gateway_id, seq, prev, t, records_array(items),
                                           compress=self.compress)
        return sign1(payload, self.key, self.kid)

    def _fit(self, items: list[bytes], seq: int, prev: bytes, t: int,
             cap: int) -> tuple[bytes, int]:
        budget = max(1, cap - ENVELOPE_BYTES - 2 * len(self.kid))
        ratio = self._ratio if self.compress else 1.0
        total, n = 0, 0
        for item in items:
            if n and (total + len(item)) * ratio > budget * FIT_MARGIN:
                break
            total += len(item)
            n += 1
        raw = self._sign(items[:n], seq, prev, t)
        for _ in range(FIT_ATTEMPTS):
            if len(raw) <= cap or n == 1:
                break
            n = max(1, int(n * cap / len(raw) * FIT_MARGIN))
            raw = self._sign(items[:n], seq, prev, t)
        if self.compress and n:
            self._ratio = max(0.02, len(raw) / max(1, sum(len(i) for i in items[:n])))
        if len(raw) > cap:
            LOGGER.warning("batch_over_cap", extra={"seq": seq, "bytes": len(raw), "cap": cap})
        return raw, n

    def _adapt_scan(self, used: int, loaded: int) -> None:
        if used == loaded == self._scan:
            self._scan = min(SCAN_MAX, self._scan * 2)
        elif used < loaded:
            self._scan = max(SCAN_MIN, min(SCAN_MAX, used * 2))
