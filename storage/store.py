"""The gateway's SQLite store: readings, events and the outbox behind one connection."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from storage import db, events, eviction, meter_records, outbox, readings
from storage.errors import (
    DATABASE_ERRORS,
    InvalidRecord,
    StorageError,
    StoreFull,
    UnknownMeter,
    translate,
)
from storage.migrations import apply_migrations
from storage.records import EventRecord, OutboxRecord, ReadingSet, StoreUsage

LOGGER = logging.getLogger(__name__)


class Transaction:
    """One open `BEGIN IMMEDIATE` transaction on the store's connection.

    Other packages write their own tables with `tx.execute`; nothing called here may commit on
    its own (that would end the transaction).
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> sqlite3.Cursor:
        """Run one statement in this transaction; sqlite3 errors become StorageError."""
        try:
            return self.conn.execute(sql, params)
        except DATABASE_ERRORS as exc:
            raise translate(exc, self.path, "statement") from exc


class Store:
    """The store; open with `Store.open(path)`.

    The thread that opens a store owns it: every call from another thread raises AssertionError
    (a contract violation, never caught as a StorageError). In the service that is the event
    loop's thread (docs/storage.md, "Who owns the connection").
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, max_bytes: int | None) -> None:
        self._conn = conn
        self.path = path
        self.max_bytes = max_bytes
        self._owner = threading.current_thread()
        self._in_transaction = False
        self._interning = readings.Interning()
        self._registry = outbox.OutboxRegistry()
        self._full_reported = False
        self._db: db.ConnectionView | None = None
        # None: every stored reading set gets its outbox row; else only those it returns True
        # for (report by exception, gateway/app/exception_report.py): the set is still stored
        self.send_reading: Callable[[ReadingSet], bool] | None = None
        self.register_outbox_kind(
            "reading", outbox.CONTRACT_PRIORITIES["reading"],
            lambda conn, refs: readings.by_ids(conn, self._interning, refs),
        )
        self.register_outbox_kind("event", outbox.CONTRACT_PRIORITIES["event"], events.by_ids)

    # -- life cycle ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: Path | str, *, max_bytes: int | None = None, create: bool = True,
        verify: bool = False,
    ) -> Store:
        """Open (or with `create`, create) the store and apply pending migrations.

        `verify` runs PRAGMA quick_check (reads the whole file: slow on a large store).
        """
        if max_bytes is not None and (not isinstance(max_bytes, int) or max_bytes <= 0):
            raise InvalidRecord(f"{path}: max_bytes must be a positive int, not {max_bytes!r}")
        path = Path(path)
        conn = db.open_connection(path, create=create, verify=verify)
        try:
            apply_migrations(conn, path)
        except BaseException:
            conn.close()
            raise
        LOGGER.info("store_opened", extra={"path": str(path), "max_bytes": max_bytes})
        return cls(conn, path, max_bytes)

    def close(self) -> None:
        """Close the connection (the last close checkpoints and removes the WAL)."""
        self._check_owner()
        self._conn.close()

    def _check_owner(self) -> None:
        """Raise AssertionError unless called on the thread that opened the store."""
        if threading.current_thread() is not self._owner:
            raise AssertionError(
                f"{self.path}: store called from thread {threading.current_thread().name!r}; "
                f"it belongs to thread {self._owner.name!r} (one owner: docs/storage.md)")

    @property
    def owner(self) -> threading.Thread:
        """The thread that opened the store and alone may call it."""
        return self._owner

    @property
    def db(self) -> db.ConnectionView:
        """The connection, for reads and schema inspection (tools and tests)."""
        self._check_owner()
        if self._db is None:
            self._db = db.ConnectionView(self._conn)
        return self._db

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """`BEGIN IMMEDIATE` ... `COMMIT`; rolls back on any exception; nesting raises."""
        self._check_owner()
        if self._in_transaction:
            raise StorageError(f"{self.path}: nested transaction (one is already open)")
        self._in_transaction = True
        try:
            self._run(lambda: self._conn.execute("BEGIN IMMEDIATE"), "begin")
            try:
                yield Transaction(self._conn, self.path)
            except DATABASE_ERRORS as exc:
                self._rollback()
                raise translate(exc, self.path, "transaction") from exc
            except BaseException:
                self._rollback()
                raise
            self._run(lambda: self._conn.execute("COMMIT"), "commit")
            self._interning.commit()
        finally:
            self._in_transaction = False

    def _rollback(self) -> None:
        self._interning.discard()
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def _run(self, action: Callable[[], object], what: str) -> object:
        try:
            return action()
        except DATABASE_ERRORS as exc:
            if what == "commit":
                self._rollback()
            raise translate(exc, self.path, what) from exc

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        self._check_owner()
        try:
            yield self._conn
        except DATABASE_ERRORS as exc:
            raise translate(exc, self.path, "query") from exc

    @contextmanager
    def _writing(self, tx: Transaction | None) -> Iterator[Transaction]:
        if tx is not None:
            self._check_owner()
            yield tx
            return
        with self.transaction() as own:
            yield own

    # -- meters and readings ------------------------------------------------------------------

    def upsert_meter(
        self, meter_id: str, *, protocol: str | None = None, bus: str | None = None,
        address: str | None = None, profile: str | None = None, seen_ms: int | None = None,
        tx: Transaction | None = None,
    ) -> int:
        """Create or update a meter (None keeps the stored field); returns its small row id."""
        if not isinstance(meter_id, str) or not meter_id:
            raise InvalidRecord(f"meter id must be a non-empty str, not {meter_id!r}")
        with self._writing(tx) as wtx:
            mid = wtx.execute(
                "INSERT INTO meters (id, protocol, bus, address, profile, first_seen_ms, "
                "last_seen_ms) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "protocol = coalesce(excluded.protocol, protocol), "
                "bus = coalesce(excluded.bus, bus), "
                "address = coalesce(excluded.address, address), "
                "profile = coalesce(excluded.profile, profile), "
                "first_seen_ms = coalesce(first_seen_ms, excluded.first_seen_ms), "
                "last_seen_ms = max(coalesce(last_seen_ms, excluded.last_seen_ms), "
                "coalesce(excluded.last_seen_ms, last_seen_ms)) RETURNING mid",
                (meter_id, protocol, bus, address, profile, seen_ms, seen_ms),
            ).fetchone()[0]
            self._interning.note_new_meter(meter_id, mid)
        return int(mid)

    def add_readings(
        self, sets: Sequence[ReadingSet], *,
        in_transaction: Callable[[Transaction, list[ReadingSet]], None] | None = None,
    ) -> list[int]:
        """Store many reading sets and their outbox rows in one transaction; returns reading ids.

        With a size bound, room is made first (see storage/eviction.py); when nothing is left
        to evict, StoreFull is raised and nothing of `sets` is stored. `in_transaction` is
        called with the stored sets (ids set) inside that same transaction, so what it writes
        (prepay charges the readings) commits, or not, together with them.
        """
        sets = list(sets)
        for reading in sets:
            readings.validate(reading)
        if not sets:
            return []
        with self.transaction() as tx:
            if self.max_bytes is not None and self._make_room(tx, sets):
                full = True
            else:
                full = False
                ids = self._write_readings(tx, sets)
                if in_transaction is not None:
                    in_transaction(tx, [replace(r, id=i) for r, i in zip(sets, ids, strict=True)])
        if full:
            self._full_reported = True
            raise StoreFull(
                f"{self.path}: store full ({self.max_bytes} bytes) and no reading left to evict"
            )
        self._full_reported = False
        return ids

    def _write_readings(self, tx: Transaction, sets: Sequence[ReadingSet]) -> list[int]:
        heads: dict[int, tuple[int, int]] = {}  # mid -> (newest reading id, newest ts_ms)
        ids = []
        for reading in sets:
            mid = self._interning.mid(tx.conn, reading.meter_id)
            if mid is None:
                LOGGER.warning("meter_auto_registered", extra={"meter": reading.meter_id})
                mid = self.upsert_meter(reading.meter_id, tx=tx)
            prev = heads[mid][0] if mid in heads else readings.chain_head(tx.conn, mid)
            reading_id = readings.insert(tx.conn, self._interning, mid, prev, reading)
            if self.send_reading is None or self.send_reading(reading):
                outbox.add_row(tx.conn, self._registry, "reading", reading_id, reading.ts_ms)
            newest_ts = max(reading.ts_ms, heads[mid][1]) if mid in heads else reading.ts_ms
            heads[mid] = (reading_id, newest_ts)
            ids.append(reading_id)
        readings.update_heads(tx.conn, heads)
        for (meter_id, series), until_ms in meter_records.newest_of(sets).items():
            mid = self._interning.mid(tx.conn, meter_id)
            assert mid is not None  # registered above
            meter_records.advance(tx.conn, mid, series, until_ms)
        return ids

    def meter_record_marks(self) -> dict[tuple[str, str], int]:
        """(meter id, series) -> the newest dated record stored (storage/meter_records.py)."""
        self._check_owner()
        return meter_records.marks(self._conn)

    def _make_room(self, tx: Transaction, sets: Sequence[ReadingSet]) -> bool:
        """Evict as needed; returns True when the store is full (the store_full event is due)."""
        assert self.max_bytes is not None
        result = eviction.make_room(tx.conn, self.max_bytes)
        now_ms = max(reading.ts_ms for reading in sets)
        if result.undelivered:
            self.add_event(
                "readings_evicted", meter_id=None, ts_ms=now_ms, severity="warning", tx=tx,
                data={"count": result.undelivered, "from_ms": result.first_ms,
                      "to_ms": result.last_ms},
            )
        if result.full and not self._full_reported:
            LOGGER.error("store_full", extra={"path": str(self.path), "max": self.max_bytes})
            self.add_event(
                "store_full", meter_id=None, ts_ms=now_ms, severity="critical", tx=tx,
                data={"max_bytes": self.max_bytes, "used_bytes": eviction.used_bytes(tx.conn)},
            )
        return result.full

    def last_readings(self, meter_id: str, n: int) -> list[ReadingSet]:
        """The meter's `n` most recently stored readings, newest first."""
        if not isinstance(n, int) or n < 0:
            raise InvalidRecord(f"last_readings of meter {meter_id!r}: n must be an int >= 0")
        if n == 0:
            return []
        with self._reading() as conn:
            return readings.latest(conn, self._interning, self._mid(conn, meter_id), n)

    def readings_between(self, meter_id: str, from_ms: int, to_ms: int) -> list[ReadingSet]:
        """The meter's readings with from_ms <= ts_ms < to_ms, oldest first."""
        with self._reading() as conn:
            mid = self._mid(conn, meter_id)
            return readings.between(conn, self._interning, mid, from_ms, to_ms)

    def _mid(self, conn: sqlite3.Connection, meter_id: str) -> int:
        mid = self._interning.mid(conn, meter_id)
        if mid is None:
            raise UnknownMeter(f"{self.path}: unknown meter {meter_id!r}")
        return mid

    # -- events -------------------------------------------------------------------------------

    def add_event(
        self, kind: str, *, meter_id: str | None, data: Mapping[str, Any] | None, ts_ms: int,
        severity: str = "info", tx: Transaction | None = None,
    ) -> int:
        """Store an event and its outbox row (in `tx` if given); returns the event id.

        Decimals in `data` are stored as their exact text. Events are never evicted.
        """
        with self._writing(tx) as wtx:
            event_id = events.insert(wtx.conn, kind, meter_id, data, ts_ms, severity)
            outbox.add_row(wtx.conn, self._registry, "event", event_id, ts_ms)
        return event_id

    def recent_events(self, n: int, meter_id: str | None = None) -> list[EventRecord]:
        """The `n` newest events, of one meter if `meter_id` is given, newest first."""
        with self._reading() as conn:
            return events.recent(conn, n, meter_id)

    # -- outbox -------------------------------------------------------------------------------

    def register_outbox_kind(self, kind: str, priority: int, loader: outbox.OutboxLoader) -> None:
        """Declare an outbox kind; `loader(conn, refs) -> {ref: body}` builds uplink bodies."""
        self._registry.register(kind, priority, loader)

    def outbox_add(self, tx: Transaction, kind: str, ref: int, ts_ms: int) -> int:
        """Add an outbox row for `ref` (a row id of the kind's table) in `tx`; returns record id."""
        self._check_owner()
        return outbox.add_row(tx.conn, self._registry, kind, ref, ts_ms)

    def pending_outbox(self, limit: int) -> list[OutboxRecord]:
        """Up to `limit` records not yet in a batch, by priority then id, with loaded bodies."""
        with self._reading() as conn:
            return outbox.pending(conn, self._registry, limit)

    def assign_to_batch(self, tx: Transaction, ids: Sequence[int], seq: int) -> None:
        """Put pending records `ids` into batch `seq` (StorageError if one is not pending)."""
        self._check_owner()
        outbox.assign_to_batch(tx.conn, ids, seq)

    def mark_delivered_through(self, tx: Transaction, seq: int) -> int:
        """Delete records of batches <= `seq` (acknowledged); returns how many."""
        self._check_owner()
        return outbox.mark_delivered_through(tx.conn, seq)

    def unbatch_from(self, tx: Transaction, seq: int) -> int:
        """Make records of batches >= `seq` pending again; returns how many."""
        self._check_owner()
        return outbox.unbatch_from(tx.conn, seq)

    def outbox_backlog(self) -> int:
        """Records not yet delivered (pending or in an unacknowledged batch)."""
        with self._reading() as conn:
            return outbox.backlog(conn)

    def usage(self) -> StoreUsage:
        """Size and backlog figures (counts rows: meant for monitoring, not every write)."""
        with self._reading() as conn:
            count, oldest = conn.execute("SELECT count(*), min(ts_ms) FROM readings").fetchone()
            return StoreUsage(
                bytes_used=eviction.used_bytes(conn),
                max_bytes=self.max_bytes,
                readings=int(count),
                oldest_reading_ms=oldest,
                undelivered=outbox.backlog(conn),
            )
