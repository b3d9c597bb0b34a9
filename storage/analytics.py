"""Analytics tables: intervals, snapshots, reading flags, balance results and active alarms,
their outbox loaders and queries.

Every write takes the caller's open transaction (`storage.store.Transaction`), the one that
stores the readings they come from, so a reading and what it closes commit together. Values
are exact decimal text (None where missing); the outbox bodies keep them as text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Protocol

from storage.outbox import chunks

INTERVAL_KIND: Final = "interval"
INTERVAL_PRIORITY: Final = 3  # beside readings (docs/uplink.md)
SNAPSHOT_KIND: Final = "snapshot"
SNAPSHOT_PRIORITY: Final = 2  # billing values go before the bulk of readings and intervals
FLAG_KIND: Final = "reading_flag"
FLAG_PRIORITY: Final = 3


class SqlTx(Protocol):
    def execute(self, sql: str, params: Any = ..., /) -> Any: ...


@dataclass(frozen=True, slots=True)
class IntervalRow:
    meter_id: str
    quantity: str
    grid: str
    start_ms: int
    end_ms: int
    value: Decimal | None
    quality: str
    gap_ms: int = 0
    end_value: Decimal | None = None
    carried: Decimal | None = None
    flags: tuple[str, ...] = ()
    id: int | None = None


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    meter_id: str
    quantity: str
    kind: str  # daily | billing
    ts_ms: int
    value: Decimal | None
    quality: str
    gap_ms: int = 0
    id: int | None = None


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


_INTERVAL_COLS = ("id, meter_id, quantity, grid, start_ms, end_ms, value, quality, gap_ms, "
                  "end_value, carried, flags")


def insert_interval(tx: SqlTx, row: IntervalRow) -> int:
    """Store one interval; its id (the outbox ref)."""
    cur = tx.execute(
        "INSERT INTO analytics_intervals (meter_id, quantity, grid, start_ms, end_ms, "
        "value, quality, gap_ms, end_value, carried, flags) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (row.meter_id, row.quantity, row.grid, row.start_ms, row.end_ms, _text(row.value),
         row.quality, row.gap_ms, _text(row.end_value), _text(row.carried), ",".join(row.flags)))
    return int(cur.lastrowid)


def _interval(r: Sequence[Any]) -> IntervalRow:
    return IntervalRow(r[1], r[2], r[3], r[4], r[5], _dec(r[6]), r[7], r[8], _dec(r[9]),
                       _dec(r[10]), tuple(f for f in r[11].split(",") if f), r[0])


def last_interval(tx: SqlTx, meter_id: str, quantity: str, grid: str, since_ms: int = 0
                  ) -> IntervalRow | None:
    """The register's newest interval ending at or after `since_ms` (the index is by end)."""
    r = tx.execute(
        f"SELECT {_INTERVAL_COLS} FROM analytics_intervals WHERE end_ms >= ? AND meter_id = ? "
        "AND quantity = ? AND grid = ? ORDER BY end_ms DESC LIMIT 1",
        (since_ms, meter_id, quantity, grid)).fetchone()
    return None if r is None else _interval(r)


def recent_intervals(tx: SqlTx, grid: str, since_ms: int
                     ) -> Iterator[tuple[str, str, int, Decimal | None, Decimal | None]]:
    """(meter, quantity, end_ms, value, end_value) of every interval ending at or after
    `since_ms`, oldest first, streamed (what the tracks resume from after a start)."""
    cur = tx.execute("SELECT meter_id, quantity, end_ms, value, end_value FROM "
                     "analytics_intervals WHERE end_ms >= ? AND grid = ? ORDER BY end_ms, id",
                     (since_ms, grid))
    for meter, quantity, end_ms, value, end_value in cur:
        yield meter, quantity, end_ms, _dec(value), _dec(end_value)


def values_ending_at(tx: SqlTx, grid: str, end_ms: int) -> dict[tuple[str, str], Decimal]:
    """{(meter, quantity): value} of the intervals ending at `end_ms` (last week's, for one
    boundary of every meter in one query)."""
    rows = tx.execute("SELECT meter_id, quantity, value FROM analytics_intervals WHERE "
                      "end_ms = ? AND grid = ? AND value IS NOT NULL", (end_ms, grid))
    return {(m, q): Decimal(v) for m, q, v in rows}


# intervals are indexed by their end; one starting in a span ends at most a day after it
_LONGEST_MS = 86_400_000 + 3_600_000


def intervals_between(tx: SqlTx, meter_id: str | None, from_ms: int, to_ms: int
                      ) -> list[IntervalRow]:
    """Intervals with from_ms <= start_ms < to_ms (of one meter, or all), by meter and time."""
    where = "end_ms > ? AND end_ms <= ? AND start_ms >= ? AND start_ms < ?"
    params: list[Any] = [from_ms, to_ms + _LONGEST_MS, from_ms, to_ms]
    if meter_id is not None:
        where, params = where + " AND meter_id = ?", [*params, meter_id]
    rows = tx.execute(f"SELECT {_INTERVAL_COLS} FROM analytics_intervals WHERE {where} "
                      "ORDER BY meter_id, quantity, start_ms", params).fetchall()
    return [_interval(r) for r in rows]


def interval_bodies(conn: SqlTx, refs: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Outbox loader for kind `interval`: {interval id: body}."""
    bodies: dict[int, dict[str, Any]] = {}
    for part in chunks(refs):
        marks = ", ".join("?" * len(part))
        for r in conn.execute(f"SELECT {_INTERVAL_COLS} FROM analytics_intervals "
                              f"WHERE id IN ({marks})", list(part)).fetchall():
            body = {"m": r[1], "q": r[2], "g": r[3], "from": r[4], "to": r[5], "v": r[6],
                    "qual": r[7], "ts_ms": r[5]}
            for key, value in (("gap_ms", r[8]), ("end", r[9]), ("carried", r[10]),
                               ("flags", r[11])):
                if value:
                    body[key] = value
            bodies[int(r[0])] = body
    return bodies


_SNAPSHOT_COLS = "id, meter_id, quantity, kind, ts_ms, value, quality, gap_ms"


def insert_snapshot(tx: SqlTx, row: SnapshotRow) -> int | None:
    cur = tx.execute(
        "INSERT OR IGNORE INTO analytics_snapshots (meter_id, quantity, kind, ts_ms, value, "
        "quality, gap_ms) VALUES (?,?,?,?,?,?,?)",
        (row.meter_id, row.quantity, row.kind, row.ts_ms, _text(row.value), row.quality,
         row.gap_ms))
    return int(cur.lastrowid) if cur.rowcount else None


def snapshots_of(tx: SqlTx, meter_id: str, limit: int) -> list[SnapshotRow]:
    """The meter's `limit` newest snapshots, newest first."""
    rows = tx.execute(f"SELECT {_SNAPSHOT_COLS} FROM analytics_snapshots WHERE meter_id = ? "
                      "ORDER BY ts_ms DESC, quantity LIMIT ?", (meter_id, limit)).fetchall()
    return [SnapshotRow(r[1], r[2], r[3], r[4], _dec(r[5]), r[6], r[7], r[0]) for r in rows]


def snapshot_bodies(conn: SqlTx, refs: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Outbox loader for kind `snapshot`: {snapshot id: body}."""
    bodies: dict[int, dict[str, Any]] = {}
    for part in chunks(refs):
        marks = ", ".join("?" * len(part))
        for r in conn.execute(f"SELECT {_SNAPSHOT_COLS} FROM analytics_snapshots "
                              f"WHERE id IN ({marks})", list(part)).fetchall():
            body = {"m": r[1], "q": r[2], "kind": r[3], "ts_ms": r[4], "v": r[5], "qual": r[6]}
            if r[7]:
                body["gap_ms"] = r[7]
            bodies[int(r[0])] = body
    return bodies


def insert_reading_flag(tx: SqlTx, reading_id: int, meter_id: str, ts_ms: int, rule: str,
                        detail: str) -> int:
    cur = tx.execute("INSERT INTO analytics_reading_flags (reading_id, meter_id, ts_ms, rule, "
                     "detail) VALUES (?,?,?,?,?)", (reading_id, meter_id, ts_ms, rule, detail))
    return int(cur.lastrowid)


def reading_flags(tx: SqlTx, reading_id: int) -> list[tuple[str, str]]:
    rows = tx.execute("SELECT rule, detail FROM analytics_reading_flags WHERE reading_id = ? "
                      "ORDER BY id", (reading_id,)).fetchall()
    return [(r[0], r[1]) for r in rows]


def flag_bodies(conn: SqlTx, refs: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Outbox loader for kind `reading_flag`: {flag id: body}."""
    bodies: dict[int, dict[str, Any]] = {}
    for part in chunks(refs):
        marks = ", ".join("?" * len(part))
        for r in conn.execute("SELECT id, meter_id, ts_ms, rule, detail FROM "
                              f"analytics_reading_flags WHERE id IN ({marks})",
                              list(part)).fetchall():
            bodies[int(r[0])] = {"m": r[1], "ts_ms": r[2], "rule": r[3], "d": r[4]}
    return bodies


BALANCE_KIND: Final = "balance"
BALANCE_PRIORITY: Final = 3


@dataclass(frozen=True, slots=True)
class BalanceRow:
    node: str
    start_ms: int
    end_ms: int
    status: str
    parent: Decimal | None
    children: Decimal | None
    loss: Decimal | None
    loss_percent: Decimal | None
    missing: tuple[str, ...] = ()


_BALANCE_COLS = "id, node, start_ms, end_ms, status, parent, children, loss, loss_percent, missing"


def insert_balance(tx: SqlTx, row: BalanceRow) -> int | None:
    cur = tx.execute(
        "INSERT OR IGNORE INTO analytics_balance (node, start_ms, end_ms, status, parent, "
        "children, loss, loss_percent, missing) VALUES (?,?,?,?,?,?,?,?,?)",
        (row.node, row.start_ms, row.end_ms, row.status, _text(row.parent), _text(row.children),
         _text(row.loss), _text(row.loss_percent), ",".join(row.missing)))
    return int(cur.lastrowid) if cur.rowcount else None


def balance_between(tx: SqlTx, from_ms: int, to_ms: int) -> list[BalanceRow]:
    """Balance results with from_ms <= start_ms < to_ms, by node and time."""
    rows = tx.execute(f"SELECT {_BALANCE_COLS} FROM analytics_balance WHERE start_ms >= ? AND "
                      "start_ms < ? ORDER BY node, start_ms", (from_ms, to_ms)).fetchall()
    return [BalanceRow(r[1], r[2], r[3], r[4], _dec(r[5]), _dec(r[6]), _dec(r[7]), _dec(r[8]),
                       tuple(m for m in r[9].split(",") if m)) for r in rows]


def balance_bodies(conn: SqlTx, refs: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Outbox loader for kind `balance`: {balance id: body}."""
    bodies: dict[int, dict[str, Any]] = {}
    for part in chunks(refs):
        marks = ", ".join("?" * len(part))
        for r in conn.execute(f"SELECT {_BALANCE_COLS} FROM analytics_balance "
                              f"WHERE id IN ({marks})", list(part)).fetchall():
            body = {"node": r[1], "from": r[2], "to": r[3], "ts_ms": r[3], "status": r[4],
                    "parent": r[5], "children": r[6], "loss": r[7], "loss_pct": r[8]}
            if r[9]:
                body["missing"] = r[9].split(",")
            bodies[int(r[0])] = body
    return bodies


def active_alarms(tx: SqlTx) -> list[dict[str, Any]]:
    rows = tx.execute("SELECT key, alarm, subject, severity, raised_ms, data FROM "
                      "analytics_alarms ORDER BY raised_ms").fetchall()
    return [{"key": r[0], "alarm": r[1], "subject": r[2], "severity": r[3], "raised_ms": r[4],
             "data": json.loads(r[5])} for r in rows]


def set_alarm(tx: SqlTx, key: str, alarm: str, subject: str, severity: str, raised_ms: int,
              data: Mapping[str, Any]) -> None:
    tx.execute("INSERT OR REPLACE INTO analytics_alarms (key, alarm, subject, severity, "
               "raised_ms, data) VALUES (?,?,?,?,?,?)",
               (key, alarm, subject, severity, raised_ms, json.dumps(dict(data), default=str)))


def clear_alarm(tx: SqlTx, key: str) -> None:
    tx.execute("DELETE FROM analytics_alarms WHERE key = ?", (key,))


# table, its time column, its outbox kind: what `prune` deletes once it is old and delivered
_PRUNED: Final = (("analytics_intervals", "end_ms", INTERVAL_KIND),
                  ("analytics_snapshots", "ts_ms", SNAPSHOT_KIND),
                  ("analytics_reading_flags", "ts_ms", FLAG_KIND),
                  ("analytics_balance", "end_ms", BALANCE_KIND))


def prune(tx: SqlTx, before_ms: int, limit: int, *, intervals_only: bool = False) -> int:
    """Delete up to `limit` rows per table older than `before_ms` whose record was delivered
    (no outbox row left); returns how many. Active alarms are never pruned. Only the intervals
    are indexed by time: the other tables are scanned, so `intervals_only` between the runs
    that do them too."""
    deleted = 0
    for table, column, kind in _PRUNED[:1] if intervals_only else _PRUNED:
        cur = tx.execute(
            f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} t WHERE t.{column} < ? "
            "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.kind = ? AND o.ref = t.id) "
            "LIMIT ?)", (before_ms, kind, limit))
        deleted += max(cur.rowcount, 0)
    return deleted
