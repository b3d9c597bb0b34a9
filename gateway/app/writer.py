"""Group commit of readings: one storage transaction per interval, not one per value.

An SD card wears out by the page; committing a second's worth of readings at once writes each
WAL page once instead of once per meter. What sits in this buffer (at most one commit interval)
is not yet committed: a power cut loses it, and the next poll reads the cumulative registers
again, so no energy goes uncounted.

The commit runs on the event loop, the store's one owner (docs/storage.md, "Who owns the
connection"): one group commit per interval, measured at tens of ms, not one per meter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from storage.errors import InvalidRecord, StorageError, StoreFull
from storage.readings import validate
from storage.records import FLAG_METER_RECORD, ReadingSet

LOGGER = logging.getLogger(__name__)

# While the disk refuses writes, keep at most this many reading sets in memory (about 10 min of
# a 200-meter site polled every 30 s); older ones are dropped, counted and logged.
MAX_BUFFERED_SETS = 4000


class ReadingWriter:
    def __init__(self, store: Any, interval_s: float) -> None:
        self._store = store
        self._interval_s = interval_s
        self._buffer: list[ReadingSet] = []
        # run inside the transaction that stores the readings (prepay charges them there)
        self.in_transaction_hooks: list[Callable[[Any, list[ReadingSet]], None]] = []
        self.after_commit_hooks: list[Callable[[list[ReadingSet]], None]] = []
        # after sets were dropped unstored (store full, buffer overflow): the meter records'
        # marks go back to what the store holds, so the dropped records are read again
        self.after_drop_hooks: list[Callable[[], None]] = []
        self.stored = 0
        self.last_ok_mono: float | None = time.monotonic()
        self.refused = 0
        self.dropped = 0

    def add(self, reading: ReadingSet) -> bool:
        """Buffer a set; False when a meter's record is refused because the buffer is full (it
        is read again later). A full buffer drops its oldest reading taken now, never a record:
        a record dropped below one kept would leave a hole its series' mark stands past."""
        if len(self._buffer) >= MAX_BUFFERED_SETS:
            oldest_live = next((i for i, r in enumerate(self._buffer)
                                if not r.flags & FLAG_METER_RECORD), None)
            if reading.flags & FLAG_METER_RECORD or oldest_live is None:
                return False
            del self._buffer[oldest_live]
            self.dropped += 1
            LOGGER.error("reading_buffer_overflow", extra={"dropped_total": self.dropped})
        self._buffer.append(reading)
        return True

    def buffered_records(self) -> list[ReadingSet]:
        """The meters' records waiting for the next commit."""
        return [r for r in self._buffer if r.flags & FLAG_METER_RECORD]

    def _in_transaction(self, tx: Any, stored: list[ReadingSet]) -> None:
        for hook in self.in_transaction_hooks:
            hook(tx, stored)

    @property
    def pending(self) -> int:
        return len(self._buffer)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            if self.flush() >= 0:
                self.last_ok_mono = time.monotonic()

    def flush(self) -> int:
        """Commit everything buffered in one transaction; the number of sets stored, or -1 when
        the disk refused the commit (the sets stay buffered for the next attempt)."""
        if not self._buffer:
            return 0
        batch, self._buffer = self._buffer, []
        try:
            ids = self._store.add_readings(batch, in_transaction=self._in_transaction)
            stored = [replace(r, id=i) for r, i in zip(batch, ids, strict=True)]
        except StoreFull:
            self.refused += len(batch)
            LOGGER.error("readings_refused_store_full", extra={"count": len(batch)})
            self._dropped()
            return 0
        except InvalidRecord as exc:  # a set no commit can take: set it aside, keep the rest
            self._buffer[:0] = self._without_invalid(batch, exc)
            self._dropped()
            return -1
        except StorageError as exc:
            self._buffer[:0] = batch  # keep them for the next attempt, oldest first
            del self._buffer[:-MAX_BUFFERED_SETS]
            LOGGER.error("readings_commit_failed", extra={"count": len(batch), "reason": str(exc)})
            return -1
        self.stored += len(stored)
        for after in self.after_commit_hooks:
            after(stored)
        return len(stored)

    def _without_invalid(self, batch: list[ReadingSet], exc: InvalidRecord) -> list[ReadingSet]:
        kept = []
        for reading in batch:
            try:
                validate(reading)
            except InvalidRecord as why:
                self.dropped += 1
                LOGGER.error("reading_invalid_dropped", extra={"meter": reading.meter_id,
                                                               "reason": str(why)})
            else:
                kept.append(reading)
        if len(kept) == len(batch):  # not one set's fault: keep them all for the next try
            LOGGER.error("readings_commit_failed", extra={"count": len(batch),
                                                          "reason": str(exc)})
        return kept

    def _dropped(self) -> None:
        for hook in self.after_drop_hooks:
            hook()

