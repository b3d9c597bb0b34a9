"""The gateway's health records: one row per sample, its outbox row of kind `health`, and a
bound on how many are kept (telemetry, not metering: the oldest unsent go first)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from storage.errors import InvalidRecord
from storage.outbox import chunks, placeholders

OUTBOX_KIND = "health"
# Below every contract kind (readings are 3): a backlog of readings goes first.
OUTBOX_PRIORITY = 6
# Sent rows kept for the console and a look on site; unsent ones bounded (weeks offline).
KEEP_SENT = 10
MAX_UNSENT = 2000


@dataclass(frozen=True, slots=True)
class HealthRecord:
    ts_ms: int
    data: Mapping[str, Any]


def add(conn: sqlite3.Connection, ts_ms: int, data: Mapping[str, Any]) -> int:
    """Insert one health row in the caller's transaction; its id (the outbox ref)."""
    try:
        body = json.dumps(dict(data), separators=(",", ":"), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidRecord(f"health record: not JSON serialisable: {exc}") from exc
    cursor = conn.execute("INSERT INTO health_records (ts_ms, body) VALUES (?, ?)",
                          (ts_ms, body))
    return int(cursor.lastrowid or 0)


def by_ids(conn: sqlite3.Connection, refs: Sequence[int]) -> dict[int, HealthRecord]:
    """Outbox loader for kind `health`."""
    found: dict[int, HealthRecord] = {}
    for part in chunks(list(refs)):
        for ref, ts_ms, body in conn.execute(
                f"SELECT id, ts_ms, body FROM health_records WHERE id IN "
                f"({placeholders(len(part))})", tuple(part)):
            found[int(ref)] = HealthRecord(int(ts_ms), json.loads(body))
    return found


def prune(conn: sqlite3.Connection) -> None:
    """Sent rows beyond the newest KEEP_SENT go; unsent ones beyond MAX_UNSENT, oldest first."""
    conn.execute(
        "DELETE FROM health_records WHERE id NOT IN (SELECT ref FROM outbox WHERE kind = ?) "
        "AND id < (SELECT COALESCE(min(id), 0) FROM (SELECT id FROM health_records "
        "ORDER BY id DESC LIMIT ?))", (OUTBOX_KIND, KEEP_SENT))
    row = conn.execute("SELECT ref FROM outbox WHERE kind = ? AND batch_seq IS NULL "
                       "ORDER BY ref DESC LIMIT 1 OFFSET ?", (OUTBOX_KIND, MAX_UNSENT)).fetchone()
    if row is not None:
        conn.execute("DELETE FROM outbox WHERE kind = ? AND batch_seq IS NULL AND ref <= ?",
                     (OUTBOX_KIND, row[0]))
        conn.execute("DELETE FROM health_records WHERE id <= ? AND id NOT IN "
                     "(SELECT ref FROM outbox WHERE kind = ?)", (row[0], OUTBOX_KIND))


def latest(conn: sqlite3.Connection) -> HealthRecord | None:
    row = conn.execute("SELECT ts_ms, body FROM health_records ORDER BY id DESC "
                       "LIMIT 1").fetchone()
    return None if row is None else HealthRecord(int(row[0]), json.loads(row[1]))
