"""Acks wait in memory for the next commit instead of paying a commit of their own.

An ack's write (batches acked, their outbox rows deleted, retention pruned) rides in the
readings' next group commit or the next batch build. A power cut before that commit loses
only the note that the head-end has those batches: they are sent again after the restart and
the head-end, which keeps them by seq, acks them again without storing anything twice. Nothing
unacked is ever deleted, so nothing is lost.
"""

import time
from collections.abc import Callable
from typing import Final

from storage import batches
from storage.store import Store, Transaction
from uplink.resend import MS_PER_DAY

# An ack with no commit to ride on is written on its own after this long (an idle link).
ACK_LINGER_S: Final = 5.0


class PendingAck:
    """The newest ack received and not yet committed."""

    def __init__(self, store: Store, retain_bytes: int, retain_days: int,
                 clock: Callable[[], float], monotonic: Callable[[], float] = time.monotonic,
                 ) -> None:
        self.store = store
        self.retain_bytes, self.retain_days = retain_bytes, retain_days
        self.clock, self.monotonic = clock, monotonic
        self.due: int | None = None
        self._since = 0.0
        self.urgent = False  # flush() is waiting: write acks at once

    def note(self, seq: int) -> None:
        if self.due is None:
            self._since = self.monotonic()
        self.due = max(seq, self.due or 0)

    def overdue(self) -> bool:
        return self.due is not None and (
            self.urgent or self.monotonic() - self._since >= ACK_LINGER_S)

    def apply(self, tx: Transaction) -> int | None:
        """Write the due ack in `tx` (idempotent); returns its seq for `committed`."""
        seq = self.due
        if seq is None:
            return None
        now_ms = int(self.clock() * 1000)
        batches.mark_acked_through(tx, seq, now_ms)
        self.store.mark_delivered_through(tx, seq)
        batches.prune_acked(tx, self.retain_bytes, now_ms - self.retain_days * MS_PER_DAY)
        return seq

    def committed(self, seq: int | None) -> None:
        """The transaction that `apply` wrote `seq` in has committed."""
        if seq is not None and self.due == seq:
            self.due = None

    def commit_now(self) -> None:
        """Write the due ack in a transaction of its own."""
        if self.due is None:
            return
        with self.store.transaction() as tx:
            seq = self.apply(tx)
        self.committed(seq)
