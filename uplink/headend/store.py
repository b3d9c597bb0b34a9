"""The head-end's own SQLite store: batches, records, chain anomalies, per-gateway ack state."""

import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from uplink.codec import Unavailable, WireRecord, reading_values
from uplink.errors import UplinkError
from uplink.headend.bodies import reading_body_json
from uplink.headend.verify import VerifiedBatch

LOGGER = logging.getLogger(__name__)
# Several head-end workers share the file; a writer waits this long for another's commit.
BUSY_TIMEOUT_MS: Final = 30_000
# A file without these is not a head-end database (readers refuse it rather than add them).
READER_TABLES: Final = frozenset({"batches", "records", "anomalies"})

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    gw TEXT NOT NULL, seq INTEGER NOT NULL, sha256 BLOB NOT NULL, prev BLOB NOT NULL,
    raw BLOB NOT NULL, received_ms INTEGER NOT NULL, PRIMARY KEY (gw, seq));
CREATE TABLE IF NOT EXISTS records (
    gw TEXT NOT NULL, id INTEGER NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
    ts_ms INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (gw, id));
CREATE TABLE IF NOT EXISTS gateways (gw TEXT PRIMARY KEY, contiguous INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS anomalies (
    gw TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL,
    ts_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS known_gaps (
    gw TEXT NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL, sha256 BLOB NOT NULL,
    PRIMARY KEY (gw, first, last));
CREATE TABLE IF NOT EXISTS enrolment (
    gw TEXT PRIMARY KEY, public_key TEXT NOT NULL, added_ms INTEGER NOT NULL,
    revoked_ms INTEGER);
CREATE TABLE IF NOT EXISTS gateway_status (
    gw TEXT PRIMARY KEY, status TEXT NOT NULL, ts_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    name TEXT PRIMARY KEY, pw_hash TEXT NOT NULL, role TEXT NOT NULL, gateways TEXT,
    meters TEXT);
"""


class GatewayRevoked(UplinkError):
    """The gateway's enrolment was revoked: its batches are refused (and not acked)."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What the chain check made of a batch and what to ack."""

    status: str  # "stored", "duplicate", "fork"; for unavailable records "known_gap", "held"
    ack: int
    resend: int | None
    gap: bool


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, bytes):
        return obj.hex()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def record_body_json(rec: WireRecord) -> str:
    """The record's fields as JSON; reading values decoded to names and exact decimal text."""
    if rec.kind == "reading" and (fast := reading_body_json(rec.fields)) is not None:
        return fast
    fields: dict[str, Any] = dict(rec.fields)
    if rec.kind == "reading":
        fields = {"meter": fields.get("m"),
                  "values": {q: str(v) for q, v in reading_values(rec.fields)}}
    return json.dumps(fields, default=_json_default, separators=(",", ":"))


def open_database(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """Open the head-end file; with `create=False` (readers) read-only, and it must exist.

    A reader given a mistyped path must fail naming it, never leave a new empty database.
    """
    if create:
        return _open_writable(path)
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise UplinkError(f"{path}: head-end database {what}")
    try:
        db = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True,
                             isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as exc:
        raise UplinkError(f"{path}: cannot open head-end database ({exc})") from None
    if not READER_TABLES.issubset(tables):
        db.close()
        missing = ", ".join(sorted(READER_TABLES - tables))
        raise UplinkError(f"{path}: not a head-end database (no table {missing})")
    return db


def _open_writable(path: Path) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA journal_mode = WAL")
        db.executescript(SCHEMA)
    except sqlite3.Error as exc:
        raise UplinkError(f"{path}: cannot open head-end database ({exc})") from None
    return db


class HeadendStore:
    """One SQLite file; every ingest is one IMMEDIATE transaction so workers can share it."""

    backend: Final = "sqlite"

    def __init__(self, path: Path, *, create: bool = True) -> None:
        """`create=False`: read-only, for tools that only read (export, cmd results)."""
        self.path = path
        self._db = open_database(path, create=create)

    def close(self) -> None:
        self._db.close()

    @property
    def db(self) -> sqlite3.Connection:
        return self._db

    def _refuse_revoked(self, gw: str) -> None:
        row = self._db.execute("SELECT revoked_ms FROM enrolment WHERE gw = ?", (gw,)).fetchone()
        if row is not None and row[0] is not None:
            raise GatewayRevoked(f"gateway {gw!r} is revoked")

    def prepare(self, batch: VerifiedBatch) -> VerifiedBatch:
        """Nothing to do ahead: the SQLite store builds its rows inside the transaction."""
        return batch

    def ingest(self, batch: VerifiedBatch) -> IngestResult:
        """Chain-check and store a verified batch; reports gap, duplicate and fork."""
        p = batch.payload
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            self._refuse_revoked(p.gw)
            status = self._check_chain(batch)
            if status == "stored":
                self._store(batch)
                if p.seq > self.contiguous(p.gw) + 1:
                    self._anomaly(p.gw, p.seq, "gap", f"seq {self.contiguous(p.gw) + 1} missing")
            contiguous = self._advance(p.gw)
            gap = db.execute("SELECT 1 FROM batches WHERE gw = ? AND seq > ? LIMIT 1",
                             (p.gw, contiguous)).fetchone() is not None
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return IngestResult(status, contiguous, contiguous + 1 if gap else None, gap)

    def record_unavailable(self, gone: Unavailable) -> IngestResult:
        """The gateway no longer holds `first`..`last`: record a known gap once and move the
        chain on past it (a batch held beyond it must chain to the declared hash)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            status = self._check_gap(gone)
            contiguous = self._advance(gone.gw)
            gap = db.execute("SELECT 1 FROM batches WHERE gw = ? AND seq > ? LIMIT 1",
                             (gone.gw, contiguous)).fetchone() is not None
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return IngestResult(status, contiguous, contiguous + 1 if gap else None, gap)

    def _check_gap(self, gone: Unavailable) -> str:
        gw = gone.gw
        if gone.last <= self.contiguous(gw) or self._db.execute(
                "SELECT 1 FROM known_gaps WHERE gw = ? AND first = ? AND last = ?",
                (gw, gone.first, gone.last)).fetchone() is not None:
            return "held"  # nothing missing there, or already recorded: said once
        row = self._db.execute("SELECT prev FROM batches WHERE gw = ? AND seq = ?",
                               (gw, gone.last + 1)).fetchone()
        if row is not None and bytes(row[0]) != gone.sha256:
            return self._anomaly(gw, gone.first, "fork",
                                 f"seq {gone.last + 1} does not chain to the declared gap end")
        self._db.execute("INSERT INTO known_gaps VALUES (?, ?, ?, ?)",
                         (gw, gone.first, gone.last, gone.sha256))
        return self._anomaly(gw, gone.first, "known_gap",
                             f"seq {gone.first}..{gone.last} unavailable from the gateway")

    def _gap_end(self, gw: str, seq: int) -> tuple[int, bytes] | None:
        """(last seq, its hash) of a known gap holding `seq`, else None."""
        row = self._db.execute("SELECT last, sha256 FROM known_gaps WHERE gw = ? AND first <= ? "
                               "AND last >= ? ORDER BY last DESC LIMIT 1",
                               (gw, seq, seq)).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def _prev_sha(self, gw: str, seq: int) -> bytes | None:
        """The hash batch `seq` must name as prev: a held batch's, or a known gap's end."""
        if seq == 1:
            return bytes(32)
        held = self._sha_of(gw, seq - 1)
        if held is not None:
            return held
        end = self._gap_end(gw, seq - 1)
        return end[1] if end is not None and end[0] == seq - 1 else None

    def _sha_of(self, gw: str, seq: int) -> bytes | None:
        row = self._db.execute("SELECT sha256 FROM batches WHERE gw = ? AND seq = ?",
                               (gw, seq)).fetchone()
        return None if row is None else bytes(row[0])

    def _check_chain(self, batch: VerifiedBatch) -> str:
        p = batch.payload
        same = self._sha_of(p.gw, p.seq)
        if same is not None:
            if same == batch.sha256:
                return "duplicate"
            return self._anomaly(p.gw, p.seq, "fork", "a different batch holds this seq")
        before = self._prev_sha(p.gw, p.seq)
        if before is not None and before != p.prev:
            return self._anomaly(p.gw, p.seq, "fork", "prev differs from the stored seq-1")
        row = self._db.execute("SELECT prev FROM batches WHERE gw = ? AND seq = ?",
                               (p.gw, p.seq + 1)).fetchone()
        if row is not None and bytes(row[0]) != batch.sha256:
            return self._anomaly(p.gw, p.seq, "fork", "stored seq+1 does not chain to it")
        return "stored"

    def _anomaly(self, gw: str, seq: int, kind: str, detail: str) -> str:
        LOGGER.warning("chain_" + kind, extra={"gw": gw, "seq": seq, "detail": detail})
        self._db.execute("INSERT INTO anomalies VALUES (?, ?, ?, ?, ?)",
                         (gw, seq, kind, detail, int(time.time() * 1000)))
        return kind

    def _store(self, batch: VerifiedBatch) -> None:
        p = batch.payload
        now_ms = int(time.time() * 1000)
        self._db.execute("INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?)",
                         (p.gw, p.seq, batch.sha256, p.prev, batch.raw, now_ms))
        rows = [(p.gw, r.id, p.seq, r.kind, r.ts_ms, record_body_json(r)) for r in p.records]
        before = self._db.total_changes
        self._db.executemany("INSERT OR IGNORE INTO records VALUES (?, ?, ?, ?, ?, ?)", rows)
        dupes = len(rows) - (self._db.total_changes - before)
        if dupes:
            self._anomaly(p.gw, p.seq, "duplicate_record", f"{dupes} record ids already held")

    def _advance(self, gw: str) -> int:
        row = self._db.execute("SELECT contiguous FROM gateways WHERE gw = ?", (gw,)).fetchone()
        contiguous = 0 if row is None else int(row[0])
        while True:
            if self._sha_of(gw, contiguous + 1) is not None:
                contiguous += 1
            elif (end := self._gap_end(gw, contiguous + 1)) is not None:
                contiguous = end[0]  # a known gap: nothing more will come for it
            else:
                break
        self._db.execute("INSERT OR REPLACE INTO gateways VALUES (?, ?)", (gw, contiguous))
        return contiguous

    def contiguous(self, gw: str) -> int:
        row = self._db.execute("SELECT contiguous FROM gateways WHERE gw = ?", (gw,)).fetchone()
        return 0 if row is None else int(row[0])

    def anomalies(self, gw: str | None = None) -> list[tuple[str, int, str, str]]:
        sql = "SELECT gw, seq, kind, detail FROM anomalies"
        args: tuple[str, ...] = ()
        if gw is not None:
            sql, args = sql + " WHERE gw = ?", (gw,)
        return [tuple(r) for r in self._db.execute(sql + " ORDER BY rowid", args)]

    def record_ids(self, gw: str) -> list[int]:
        return [r[0] for r in self._db.execute(
            "SELECT id FROM records WHERE gw = ? ORDER BY id", (gw,))]

    def export(self, gw: str | None = None) -> Iterator[dict[str, Any]]:
        """Stored records as dicts (gw, id, seq, kind, t_ms, body), by gateway and id."""
        sql = "SELECT gw, id, seq, kind, ts_ms, body FROM records"
        args: tuple[str, ...] = ()
        if gw is not None:
            sql, args = sql + " WHERE gw = ?", (gw,)
        for g, rid, seq, kind, ts_ms, body in self._db.execute(sql + " ORDER BY gw, id", args):
            yield {"gw": g, "id": rid, "seq": seq, "kind": kind, "t_ms": ts_ms,
                   "body": json.loads(body)}

