"""Uplink batch bookkeeping over a store transaction: opaque signed bytes, chain head, acks.

Everything here takes the caller's transaction (a sqlite3 connection inside
`store.transaction()`), so a batch row, its outbox assignment and the chain head move together.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cbor2

from storage.errors import StorageError
from storage.ledger import SqlTx

# Anything that executes SQL inside the caller's transaction (storage.store.Transaction, or the
# connection itself for storage/eviction.py): not importing store keeps store -> eviction ->
# batches free of a cycle.
Transaction = SqlTx

ZERO_SHA256 = bytes(32)


@dataclass(frozen=True, slots=True)
class StoredBatch:
    seq: int
    data: bytes
    sha256: bytes
    n_records: int
    created_ms: int
    sent_ms: int | None
    held: str | None


@dataclass(frozen=True, slots=True)
class CommandResult:
    """A command's outcome, the body of an outbox record of kind `cmd_result`."""

    id: int
    ts_ms: int
    cmd_id: str | None
    op: str | None
    ok: bool
    body: dict[str, Any]


def _get_state(tx: Transaction, key: str) -> Any:
    row = tx.execute("SELECT value FROM uplink_state WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


def _set_state(tx: Transaction, key: str, value: Any) -> None:
    tx.execute("INSERT OR REPLACE INTO uplink_state (key, value) VALUES (?, ?)", (key, value))


def chain_head(tx: Transaction) -> tuple[int, bytes]:
    """(last seq built, its SHA-256); (0, 32 zero bytes) before the first batch."""
    seq = _get_state(tx, "last_seq")
    sha = _get_state(tx, "last_sha256")
    return (int(seq), bytes(sha)) if seq is not None else (0, ZERO_SHA256)


def acked_seq(tx: Transaction) -> int:
    value = _get_state(tx, "acked_seq")
    return 0 if value is None else int(value)


def add_batch(tx: Transaction, seq: int, data: bytes, sha256: bytes, n_records: int,
              created_ms: int, sent_ms: int | None = None) -> None:
    """Store a built batch and make it the chain head; seq must be exactly head + 1."""
    head, _ = chain_head(tx)
    if seq != head + 1:
        raise StorageError(f"uplink batch {seq}: chain head is {head}, expected seq {head + 1}")
    tx.execute("INSERT INTO uplink_batches (seq, bytes, sha256, n_records, created_ms, sent_ms) "
               "VALUES (?, ?, ?, ?, ?, ?)", (seq, data, sha256, n_records, created_ms, sent_ms))
    _set_state(tx, "last_seq", seq)
    _set_state(tx, "last_sha256", sha256)


def _row_to_batch(row: Sequence[Any]) -> StoredBatch:
    seq, data, sha, n, created, sent, held = row
    return StoredBatch(seq, bytes(data), bytes(sha), n, created, sent, held)


def unacked_batches(tx: Transaction, from_seq: int = 0) -> list[StoredBatch]:
    """Batches built but not acked, by seq (from `from_seq` on)."""
    rows = tx.execute("SELECT seq, bytes, sha256, n_records, created_ms, sent_ms, held "
                      "FROM uplink_batches WHERE acked_ms IS NULL AND seq >= ? ORDER BY seq",
                      (from_seq,)).fetchall()
    return [_row_to_batch(r) for r in rows]


def mark_sent(tx: Transaction, seq: int, ts_ms: int) -> None:
    tx.execute("UPDATE uplink_batches SET sent_ms = ? WHERE seq = ?", (ts_ms, seq))


def mark_held(tx: Transaction, seq: int, reason: str | None) -> None:
    tx.execute("UPDATE uplink_batches SET held = ? WHERE seq = ?", (reason, seq))


def mark_acked_through(tx: Transaction, seq: int, ts_ms: int) -> int:
    """Record an ack: batches up to `seq` acked (their bytes stay until `prune_acked`);
    returns the new acked seq."""
    previous = acked_seq(tx)
    if seq <= previous:
        return previous
    if _get_state(tx, "retained_from") is None:
        # Stores from before retention emptied the bytes of every acked batch.
        _set_state(tx, "retained_from", previous + 1)
        _set_state(tx, "retained_bytes", 0)
    tx.execute("UPDATE uplink_batches SET acked_ms = ? WHERE seq <= ? AND acked_ms IS NULL",
               (ts_ms, seq))
    added = tx.execute("SELECT coalesce(sum(length(bytes)), 0) FROM uplink_batches "
                       "WHERE seq > ? AND seq <= ?", (previous, seq)).fetchone()[0]
    _set_state(tx, "retained_bytes", int(_get_state(tx, "retained_bytes") or 0) + added)
    _set_state(tx, "acked_seq", seq)
    return seq


def retained_from(tx: Transaction) -> int:
    """Lowest acked seq whose bytes are still kept (acked seq + 1 when none is)."""
    value = _get_state(tx, "retained_from")
    return acked_seq(tx) + 1 if value is None else int(value)


def prune_acked(tx: Transaction, keep_bytes: int, keep_since_ms: int) -> int:
    """Drop the bytes of acked batches beyond the newest `keep_bytes` or acked before
    `keep_since_ms`, oldest first (so the kept ones are the seqs just below the ack); returns
    the new `retained_from`. Reads only the rows it drops, plus one."""
    start, acked = retained_from(tx), acked_seq(tx)
    total, keep = int(_get_state(tx, "retained_bytes") or 0), start
    rows = tx.execute("SELECT seq, length(bytes), acked_ms FROM uplink_batches "
                      "WHERE seq BETWEEN ? AND ? ORDER BY seq", (start, acked))
    for seq, size, acked_ms in rows:
        if total <= keep_bytes and acked_ms >= keep_since_ms:
            break
        total, keep = total - size, seq + 1
    if keep > start:
        tx.execute("UPDATE uplink_batches SET bytes = x'' WHERE seq >= ? AND seq < ?",
                   (start, keep))
        _set_state(tx, "retained_from", keep)
        _set_state(tx, "retained_bytes", total)
    return keep


def acked_batches(tx: Transaction, first: int, last: int) -> list[StoredBatch]:
    """Acked batches `first`..`last` whose bytes are kept, by seq."""
    rows = tx.execute("SELECT seq, bytes, sha256, n_records, created_ms, sent_ms, held "
                      "FROM uplink_batches WHERE seq BETWEEN ? AND ? AND acked_ms IS NOT NULL "
                      "AND seq >= ? ORDER BY seq", (first, last, retained_from(tx))).fetchall()
    return [_row_to_batch(r) for r in rows]


def batch_sha256(tx: Transaction, seq: int) -> bytes | None:
    """SHA-256 of batch `seq`'s bytes (kept after the bytes are dropped)."""
    row = tx.execute("SELECT sha256 FROM uplink_batches WHERE seq = ?", (seq,)).fetchone()
    return None if row is None else bytes(row[0])


def get_state(tx: Transaction, key: str) -> Any:
    """Read an uplink state value (e.g. `broker_max_packet`)."""
    return _get_state(tx, key)


def set_state(tx: Transaction, key: str, value: Any) -> None:
    _set_state(tx, key, value)


def remember_command(tx: Transaction, cmd_id: str, exp_ms: int, now_ms: int) -> bool:
    """Record a command id; False when it was already seen. Expired ids are pruned."""
    tx.execute("DELETE FROM uplink_seen_commands WHERE exp_ms < ?", (now_ms,))
    cursor = tx.execute("INSERT OR IGNORE INTO uplink_seen_commands (id, exp_ms) VALUES (?, ?)",
                        (cmd_id, exp_ms))
    return cursor.rowcount == 1


def add_command_result(tx: Transaction, ts_ms: int, cmd_id: str | None, op: str | None,
                       ok: bool, body: Mapping[str, Any]) -> int:
    """Store a command result row; the caller adds its `cmd_result` outbox row (returns ref)."""
    cursor = tx.execute("INSERT INTO uplink_cmd_results (ts_ms, cmd_id, op, ok, body) "
                        "VALUES (?, ?, ?, ?, ?)", (ts_ms, cmd_id, op, int(ok), cbor2.dumps(body)))
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def load_command_results(conn: sqlite3.Connection, refs: Sequence[int]) -> dict[int, CommandResult]:
    """Outbox loader for kind `cmd_result` (register with priority 0)."""
    out: dict[int, CommandResult] = {}
    for start in range(0, len(refs), 500):
        part = refs[start:start + 500]
        marks = ", ".join("?" * len(part))
        for rid, ts, cmd_id, op, ok, body in conn.execute(
                f"SELECT id, ts_ms, cmd_id, op, ok, body FROM uplink_cmd_results "
                f"WHERE id IN ({marks})", tuple(part)):
            out[rid] = CommandResult(rid, ts, cmd_id, op, bool(ok), cbor2.loads(body))
    return out
