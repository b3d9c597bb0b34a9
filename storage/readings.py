"""Readings rows: interned quantities, meter row ids, inserting and loading ReadingSets."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from storage import codec
from storage.errors import InvalidRecord, StorageError
from storage.outbox import chunks, placeholders
from storage.records import FLAG_METER_RECORD, ReadingSet, StoredValue

MAX_FLAGS = 0xFF
_SERIES = re.compile(r"[a-z][a-z0-9_]{0,31}")
_SELECT = (
    "SELECT r.id, m.id, r.ts_ms, r.flags, r.vals FROM readings r "
    "JOIN meters m ON m.mid = r.meter "
)


class Interning:
    """Caches of (quantity, unit) -> qid and meter id -> mid, safe against rollback.

    Ids created inside a transaction only enter the cache on commit (see `commit`/`discard`).
    """

    def __init__(self) -> None:
        self._qids: dict[tuple[str, str], int] = {}
        self._names: dict[int, tuple[str, str]] = {}
        self._mids: dict[str, int] = {}
        self._new_qids: dict[tuple[str, str], int] = {}
        self._new_mids: dict[str, int] = {}

    def qid(self, conn: sqlite3.Connection, quantity: str, unit: str) -> int:
        """The id of (quantity, unit), inserted if new."""
        key = (quantity, unit)
        found = self._qids.get(key) or self._new_qids.get(key)
        if found is None:
            row = conn.execute(
                "SELECT qid FROM quantities WHERE quantity = ? AND unit = ?", key
            ).fetchone()
            if row is None:
                cursor = conn.execute(
                    "INSERT INTO quantities (quantity, unit) VALUES (?, ?)", key
                )
                found = int(cursor.lastrowid or 0)
                self._new_qids[key] = found
            else:
                found = int(row[0])
                self._qids[key] = found
                self._names[found] = key
        return found

    def name(self, conn: sqlite3.Connection, qid: int, where: str) -> tuple[str, str]:
        """(quantity, unit) of `qid`; the small table is reloaded whole on a miss."""
        if qid not in self._names:
            for row_qid, quantity, unit in conn.execute("SELECT * FROM quantities"):
                self._names[row_qid] = (quantity, unit)
        try:
            return self._names[qid]
        except KeyError:
            raise StorageError(f"{where}: unknown quantity id {qid}") from None

    def mid(self, conn: sqlite3.Connection, meter_id: str) -> int | None:
        """The meter's small row id, or None if the meter is unknown."""
        found = self._mids.get(meter_id) or self._new_mids.get(meter_id)
        if found is None:
            row = conn.execute("SELECT mid FROM meters WHERE id = ?", (meter_id,)).fetchone()
            if row is None:
                return None
            found = self._mids[meter_id] = int(row[0])
        return found

    def note_new_meter(self, meter_id: str, mid: int) -> None:
        """Remember a meter inserted by the open transaction."""
        self._new_mids[meter_id] = mid

    def commit(self) -> None:
        """The transaction committed: its new ids are real."""
        self._qids.update(self._new_qids)
        self._names.update({qid: key for key, qid in self._new_qids.items()})
        self._mids.update(self._new_mids)
        self.discard()

    def discard(self) -> None:
        """The transaction rolled back: forget the ids it made."""
        self._new_qids.clear()
        self._new_mids.clear()


def validate(reading: ReadingSet) -> None:
    """Raise InvalidRecord naming the meter and field when `reading` cannot be stored."""
    where = f"reading of meter {reading.meter_id!r}"
    if not isinstance(reading.meter_id, str) or not reading.meter_id:
        raise InvalidRecord(f"{where}: meter_id must be a non-empty str")
    if not isinstance(reading.ts_ms, int) or isinstance(reading.ts_ms, bool):
        raise InvalidRecord(f"{where}: ts_ms must be an int, not {reading.ts_ms!r}")
    if not isinstance(reading.flags, int) or not 0 <= reading.flags <= MAX_FLAGS:
        raise InvalidRecord(f"{where}: flags must be an int in 0..{MAX_FLAGS}")
    if bool(reading.series) != bool(reading.flags & FLAG_METER_RECORD) or (
            reading.series and _SERIES.fullmatch(reading.series) is None):
        raise InvalidRecord(f"{where}: a meter's own record has FLAG_METER_RECORD and a series "
                            f"(lower_snake_case, at most 32 characters): {reading.series!r}")
    for value in reading.values:
        if not isinstance(value, StoredValue):
            raise InvalidRecord(f"{where}: values must be StoredValue, not {value!r}")
        if not isinstance(value.quantity, str) or not value.quantity:
            raise InvalidRecord(f"{where}: quantity must be a non-empty str: {value!r}")
        if not isinstance(value.unit, str):
            raise InvalidRecord(f"{where}: unit of {value.quantity!r} must be a str")
        if not isinstance(value.value, Decimal | str):
            raise InvalidRecord(
                f"{where}: value of {value.quantity!r} must be Decimal or str, "
                f"not {type(value.value).__name__}"
            )


def chain_head(conn: sqlite3.Connection, mid: int) -> int | None:
    """Id of the meter's most recently stored reading (may be evicted already)."""
    row = conn.execute("SELECT last_reading FROM meters WHERE mid = ?", (mid,)).fetchone()
    return None if row is None else row[0]


def insert(
    conn: sqlite3.Connection, interning: Interning, mid: int, prev: int | None,
    reading: ReadingSet,
) -> int:
    """Insert one validated reading row linked to the meter's previous one; returns its id."""
    items = [(interning.qid(conn, v.quantity, v.unit), v.value) for v in reading.values]
    cursor = conn.execute(
        "INSERT INTO readings (meter, ts_ms, flags, prev, vals) VALUES (?, ?, ?, ?, ?)",
        (mid, reading.ts_ms, reading.flags, prev, codec.encode_items(items)),
    )
    return int(cursor.lastrowid or 0)


def update_heads(conn: sqlite3.Connection, heads: Mapping[int, tuple[int, int]]) -> None:
    """Per meter row id: set the chain head (reading id) and widen first/last seen (ts_ms)."""
    conn.executemany(
        "UPDATE meters SET last_reading = ?1, first_seen_ms = coalesce(first_seen_ms, ?2), "
        "last_seen_ms = max(coalesce(last_seen_ms, ?2), ?2) WHERE mid = ?3",
        [(reading_id, ts_ms, mid) for mid, (reading_id, ts_ms) in heads.items()],
    )


def _to_reading(conn: sqlite3.Connection, interning: Interning, row: tuple) -> ReadingSet:
    reading_id, meter_id, ts_ms, flags, blob = row
    where = f"reading {reading_id} of meter {meter_id!r}"
    values = []
    for qid, value in codec.decode_items(blob, where):
        quantity, unit = interning.name(conn, qid, where)
        values.append(StoredValue(quantity, value, unit))
    return ReadingSet(meter_id, ts_ms, tuple(values), flags, reading_id)


def _to_readings(
    conn: sqlite3.Connection, interning: Interning, rows: Iterable[tuple]
) -> list[ReadingSet]:
    return [_to_reading(conn, interning, row) for row in rows]


def latest(conn: sqlite3.Connection, interning: Interning, mid: int, n: int) -> list[ReadingSet]:
    """The meter's `n` most recently stored readings, newest first (walks the prev chain)."""
    rows = conn.execute(
        "WITH RECURSIVE chain (id, depth) AS ("
        " SELECT last_reading, 1 FROM meters WHERE mid = ?1 AND last_reading IS NOT NULL"
        " UNION ALL SELECT r.prev, chain.depth + 1 FROM chain JOIN readings r ON r.id = chain.id"
        " WHERE chain.depth < ?2 AND r.prev IS NOT NULL) "
        + _SELECT + "JOIN chain ON chain.id = r.id WHERE r.meter = ?1 ORDER BY chain.depth",
        (mid, n),
    )
    return _to_readings(conn, interning, rows)


def between(
    conn: sqlite3.Connection, interning: Interning, mid: int, from_ms: int, to_ms: int
) -> list[ReadingSet]:
    """The meter's readings with from_ms <= ts_ms < to_ms, oldest first.

    Uses the ts_ms index and filters by meter: the cost grows with the readings of all
    meters in the window (fine for minutes to hours, slow for months on a large site).
    """
    rows = conn.execute(
        _SELECT + "WHERE r.meter = ? AND r.ts_ms >= ? AND r.ts_ms < ? ORDER BY r.ts_ms, r.id",
        (mid, from_ms, to_ms),
    )
    return _to_readings(conn, interning, rows)


def by_ids(
    conn: sqlite3.Connection, interning: Interning, ids: Sequence[int]
) -> Mapping[int, ReadingSet]:
    """Readings keyed by id (the outbox loader of kind `reading`)."""
    found: dict[int, ReadingSet] = {}
    for part in chunks(list(ids)):
        rows = conn.execute(_SELECT + f"WHERE r.id IN ({placeholders(len(part))})", part)
        for reading in _to_readings(conn, interning, rows):
            assert reading.id is not None
            found[reading.id] = reading
    return found
