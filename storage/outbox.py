"""The outbox: records waiting for the uplink, by kind and priority, and their body loaders."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from storage.errors import InvalidRecord, StorageError
from storage.records import OutboxRecord

# Lower drains first (docs/architecture.md, "Storage contract").
CONTRACT_PRIORITIES: Mapping[str, int] = {"cmd_result": 0, "ledger": 1, "event": 2, "reading": 3}
# Stay well below SQLite's bound on host parameters in one statement.
MAX_PARAMS_PER_QUERY = 500

# A loader gets the connection and the refs of one kind; it returns {ref: body}.
OutboxLoader = Callable[[sqlite3.Connection, Sequence[int]], Mapping[int, Any]]


@dataclass(frozen=True, slots=True)
class OutboxKind:
    """A registered kind of outbox record."""

    name: str
    priority: int
    loader: OutboxLoader


class OutboxRegistry:
    """Kinds known to this process; rows of an unregistered kind are an error when loaded."""

    def __init__(self) -> None:
        self._kinds: dict[str, OutboxKind] = {}

    def register(self, kind: str, priority: int, loader: OutboxLoader) -> None:
        """Register (or replace) a kind; the contract kinds must keep their priority."""
        if not kind or not isinstance(kind, str):
            raise InvalidRecord(f"outbox kind must be a non-empty str, not {kind!r}")
        if not isinstance(priority, int) or priority < 0:
            raise InvalidRecord(f"outbox kind {kind!r}: priority must be an int >= 0")
        expected = CONTRACT_PRIORITIES.get(kind)
        if expected is not None and priority != expected:
            raise InvalidRecord(
                f"outbox kind {kind!r}: priority {priority} differs from the contract ({expected})"
            )
        self._kinds[kind] = OutboxKind(kind, priority, loader)

    def get(self, kind: str) -> OutboxKind:
        """The registered kind, or StorageError naming it."""
        try:
            return self._kinds[kind]
        except KeyError:
            raise StorageError(f"outbox kind {kind!r} is not registered") from None


def chunks(ids: Sequence[int], size: int = MAX_PARAMS_PER_QUERY) -> Iterator[Sequence[int]]:
    """Slices of `ids` small enough for one IN (...) list."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def placeholders(count: int) -> str:
    """`?, ?, ?` for an IN list of `count` values."""
    return ", ".join("?" * count)


def add_row(
    conn: sqlite3.Connection, registry: OutboxRegistry, kind: str, ref: int, ts_ms: int
) -> int:
    """Insert one outbox row in the caller's transaction; returns the record id."""
    priority = registry.get(kind).priority
    cursor = conn.execute(
        "INSERT INTO outbox (kind, priority, ref, created_ms) VALUES (?, ?, ?, ?)",
        (kind, priority, ref, ts_ms),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def pending(
    conn: sqlite3.Connection, registry: OutboxRegistry, limit: int
) -> list[OutboxRecord]:
    """Up to `limit` rows not yet in a batch, by priority then id, each with its loaded body."""
    rows = conn.execute(
        "SELECT id, kind, priority, ref, created_ms FROM outbox WHERE batch_seq IS NULL "
        "ORDER BY priority, id LIMIT ?",
        (limit,),
    ).fetchall()
    refs_by_kind: dict[str, list[int]] = {}
    for _id, kind, _prio, ref, _created in rows:
        refs_by_kind.setdefault(kind, []).append(ref)
    bodies = {
        kind: registry.get(kind).loader(conn, refs) for kind, refs in refs_by_kind.items()
    }
    records = []
    for record_id, kind, priority, ref, created_ms in rows:
        body = bodies[kind].get(ref)
        if body is None:
            raise StorageError(f"outbox record {record_id} ({kind}): source row {ref} is missing")
        records.append(OutboxRecord(record_id, kind, priority, ref, created_ms, None, body))
    return records


def assign_to_batch(conn: sqlite3.Connection, ids: Sequence[int], seq: int) -> None:
    """Put pending rows `ids` into batch `seq`; every id must exist and be unbatched."""
    unique = sorted(set(ids))
    updated = 0
    for part in chunks(unique):
        updated += conn.execute(
            f"UPDATE outbox SET batch_seq = ? WHERE batch_seq IS NULL "
            f"AND id IN ({placeholders(len(part))})",
            (seq, *part),
        ).rowcount
    if updated != len(unique):
        raise StorageError(
            f"batch {seq}: {len(unique) - updated} of outbox ids {unique[:10]} are unknown, "
            "delivered or already in a batch"
        )


def mark_delivered_through(conn: sqlite3.Connection, seq: int) -> int:
    """Delete the rows of every batch up to and including `seq`; returns how many."""
    return conn.execute(
        "DELETE FROM outbox WHERE batch_seq IS NOT NULL AND batch_seq <= ?", (seq,)
    ).rowcount


def unbatch_from(conn: sqlite3.Connection, seq: int) -> int:
    """Return rows of batches `seq` and later to pending (for resend or split)."""
    return conn.execute(
        "UPDATE outbox SET batch_seq = NULL WHERE batch_seq IS NOT NULL AND batch_seq >= ?",
        (seq,),
    ).rowcount


def backlog(conn: sqlite3.Connection) -> int:
    """Rows not yet delivered, batched or not."""
    return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])
