"""The size bound: evict oldest delivered readings, then the bytes of acked uplink batches kept
for a resend (storage/batches.py retention), then the oldest undelivered readings.

Events, outbox rows of other kinds and money records are never touched here. Size is read from
the page counters (page_count - freelist_count), never by counting rows.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass

from storage import batches

LOGGER = logging.getLogger(__name__)

# Evict down to 95 % of the bound, so eviction runs in occasional bursts, not at every commit.
LOW_WATERMARK = 0.95
# Rows per DELETE statement: bounds the work of one statement.
EVICT_CHUNK_ROWS = 2000
# Chunks per commit: bounds the WAL growth of one commit; the rest waits for the next commit.
MAX_EVICT_CHUNKS_PER_COMMIT = 50
# Pages returned to the file system per commit when the file is above the bound (small steps).
VACUUM_STEP_PAGES = 64


@dataclass(slots=True)
class Eviction:
    """What one make_room call did."""

    delivered: int = 0
    undelivered: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    full: bool = False

    def note_range(self, first_ms: int | None, last_ms: int | None) -> None:
        """Widen the time range of evicted undelivered readings."""
        if first_ms is not None:
            self.first_ms = first_ms if self.first_ms is None else min(self.first_ms, first_ms)
        if last_ms is not None:
            self.last_ms = last_ms if self.last_ms is None else max(self.last_ms, last_ms)


def used_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of pages holding data (free pages are reused, so they do not count)."""
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * page_size)


def file_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of the main database file, free pages included."""
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int(conn.execute("PRAGMA page_count").fetchone()[0] * page_size)


def make_room(conn: sqlite3.Connection, max_bytes: int) -> Eviction:
    """Within the caller's transaction, bring the used size under `max_bytes` if possible."""
    result = Eviction()
    if file_bytes(conn) > max_bytes and conn.execute("PRAGMA freelist_count").fetchone()[0]:
        conn.execute(f"PRAGMA incremental_vacuum({VACUUM_STEP_PAGES})").fetchall()
    used = used_bytes(conn)
    if used <= max_bytes:
        return result
    target = int(max_bytes * LOW_WATERMARK)
    for _ in range(MAX_EVICT_CHUNKS_PER_COMMIT):
        if used <= target:
            break
        deleted = _evict_delivered(conn)
        result.delivered += deleted
        if not deleted and not _drop_retained_batches(conn) and \
                not _evict_undelivered(conn, result):
            break
        used = used_bytes(conn)
    result.full = used > max_bytes
    LOGGER.info(
        "readings_evicted",
        extra={
            "delivered": result.delivered,
            "undelivered": result.undelivered,
            "used_bytes": used,
            "max_bytes": max_bytes,
        },
    )
    return result


def _evict_delivered(conn: sqlite3.Connection) -> int:
    # Readings older than the oldest one still in the outbox are all delivered; delivered
    # readings after it (out-of-order acks) are rare and go with the undelivered pass.
    oldest_pending = conn.execute(
        "SELECT min(ref) FROM outbox WHERE kind = 'reading'"
    ).fetchone()[0]
    bound = oldest_pending if oldest_pending is not None else 2**63 - 1
    return conn.execute(
        "DELETE FROM readings WHERE id IN "
        "(SELECT id FROM readings WHERE id < ? ORDER BY id LIMIT ?)",
        (bound, EVICT_CHUNK_ROWS),
    ).rowcount


def _drop_retained_batches(conn: sqlite3.Connection) -> bool:
    """Empty every acked batch kept for a resend; True if that freed anything. A head-end that
    asks for one later gets a signed 'unavailable' answer (a known gap, no lost reading)."""
    before = batches.retained_from(conn)
    if batches.prune_acked(conn, 0, 2**62) == before:
        return False
    LOGGER.warning("retained_batches_dropped", extra={"from_seq": before})
    return True


def _evict_undelivered(conn: sqlite3.Connection, result: Eviction) -> int:
    last_id = conn.execute(
        "SELECT max(id) FROM (SELECT id FROM readings ORDER BY id LIMIT ?)", (EVICT_CHUNK_ROWS,)
    ).fetchone()[0]
    if last_id is None:
        return 0
    first_ms, last_ms = conn.execute(
        "SELECT min(r.ts_ms), max(r.ts_ms) FROM outbox o JOIN readings r ON r.id = o.ref "
        "WHERE o.kind = 'reading' AND o.ref <= ?",
        (last_id,),
    ).fetchone()
    result.note_range(first_ms, last_ms)
    result.undelivered += conn.execute(
        "DELETE FROM outbox WHERE kind = 'reading' AND ref <= ?", (last_id,)
    ).rowcount
    return conn.execute("DELETE FROM readings WHERE id <= ?", (last_id,)).rowcount
