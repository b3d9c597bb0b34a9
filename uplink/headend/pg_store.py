"""The head-end store on PostgreSQL: several workers on several machines share one database.

Everything that costs CPU (signature, inflate, CBOR, JSON of the records) is done before the
transaction. Inside it the records are copied first, then the gateway's chain row is locked
(`SELECT ... FOR UPDATE`) for the chain check, the batch row and `contiguous`, so two workers
given batches of one gateway out of order serialise on that row only, and only for those few
statements and the commit, not for the COPY: no lost update of `contiguous`, no false gap.
Batches of different gateways commit in parallel.
"""

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import psycopg

from uplink.codec import Unavailable, WireRecord
from uplink.errors import UplinkError
from uplink.headend.bodies import wire_body_json
from uplink.headend.export import ExportQuery, stream_records
from uplink.headend.pg_schema import MIGRATION_LOCK, MIGRATIONS
from uplink.headend.store import GatewayRevoked, IngestResult, record_body_json
from uplink.headend.verify import VerifiedBatch

LOGGER = logging.getLogger(__name__)
# A lock wait longer than this means a stuck worker, not load: fail the batch (it is re-sent).
LOCK_TIMEOUT: Final = "30s"
COPY_RECORDS: Final = "COPY records (gw, id, seq, kind, ts_ms, meter, body) FROM STDIN"


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A verified batch with its record rows built, ready for one short transaction."""

    batch: VerifiedBatch
    ids: list[int]
    kinds: list[str]
    ts: list[int]
    meters: list[str | None]
    bodies: list[str]
    copy_text: bytes  # the same rows in COPY text format, for the fast path


def _copy_field(value: str | None) -> str:
    """A COPY text-format field: NULL as \\N, backslash, tab, newline and CR escaped."""
    if value is None:
        return "\\N"
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = (value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                 .replace("\r", "\\r"))
    return value


def prepare(batch: VerifiedBatch) -> PreparedBatch:
    """Build the rows outside any transaction (this is the CPU part of storing), also as
    COPY text, so the store thread only streams bytes (it shares the GIL with decoding)."""
    recs = batch.payload.records
    ids, kinds, ts = [r.id for r in recs], [r.kind for r in recs], [r.ts_ms for r in recs]
    meters, bodies = [_meter(r.fields) for r in recs], [_body(r) for r in recs]
    head = f"{_copy_field(batch.payload.gw)}\t"
    seq = f"\t{batch.payload.seq}\t"
    text = "".join(
        f"{head}{i}{seq}{_copy_field(k)}\t{t}\t{_copy_field(m)}\t{_copy_field(b)}\n"
        for i, k, t, m, b in zip(ids, kinds, ts, meters, bodies, strict=True))
    return PreparedBatch(batch, ids, kinds, ts, meters, bodies, text.encode())


def _meter(fields: dict[str, Any]) -> str | None:
    """The meter a record is about: `m` (readings, events), or a ledger entry's `meter_id`."""
    meter = fields.get("m")
    if meter is None and isinstance(fields.get("b"), dict):
        meter = fields["b"].get("meter_id")
    return meter if isinstance(meter, str) else None


def _body(rec: WireRecord) -> str:
    # Readings stay in their exact wire form (integers only: no Decimal, no text per value);
    # the tools turn them into names and decimal text when they read (bodies.readable_body).
    if rec.kind == "reading" and (wire := wire_body_json(rec.fields)) is not None:
        return wire
    return record_body_json(rec)


def migrate(conn: psycopg.Connection[Any]) -> int:
    """Apply the missing migrations; returns the schema version now in place."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        current = int(row[0]) if row and row[0] is not None else 0
        for number, sql in enumerate(MIGRATIONS[current:], start=current + 1):
            conn.execute(sql.encode())
            conn.execute("INSERT INTO schema_version VALUES (%s)", (number,))
            LOGGER.info("schema_migrated", extra={"version": number})
    return len(MIGRATIONS)


def connect(url: str, *, create: bool = True) -> psycopg.Connection[Any]:
    try:
        conn = psycopg.connect(url, autocommit=True)
    except psycopg.Error as exc:
        raise UplinkError(f"{url}: cannot connect to PostgreSQL ({exc})") from None
    if create:
        migrate(conn)
    elif conn.execute("SELECT to_regclass('records')").fetchone() in (None, (None,)):
        conn.close()
        raise UplinkError(f"{url}: not a head-end database (no table records)")
    return conn


class PgStore:
    """One worker's connection; same contract as `HeadendStore` (SQLite)."""

    backend: Final = "postgresql"

    def __init__(self, url: str, *, create: bool = True, gap_grace_ms: int = 0) -> None:
        """`gap_grace_ms`: with several workers a batch may be stored just before its
        predecessor, which another worker is storing; a gap is reported (anomaly, `resend`
        in the ack) only once the oldest batch held above it is this old. 0: at once."""
        self.url = url
        self.gap_grace_ms = gap_grace_ms
        self.path = url  # the tools name the store by it in messages
        self.conn = connect(url, create=create)
        self.conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")

    def close(self) -> None:
        self.conn.close()

    def _reconnect_if_broken(self) -> None:
        """After the server restarted or the network dropped, the next batch reconnects (the
        one that failed was not acked, so its gateway sends it again)."""
        if self.conn.broken:
            LOGGER.warning("database_reconnect", extra={"url": self.url})
            self.conn = connect(self.url)
            self.conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")

    def prepare(self, batch: VerifiedBatch) -> PreparedBatch:
        return prepare(batch)

    def ingest(self, batch: VerifiedBatch | PreparedBatch) -> IngestResult:
        """Chain-check and store one batch in one transaction under the gateway's row lock."""
        prep = batch if isinstance(batch, PreparedBatch) else prepare(batch)
        self._reconnect_if_broken()
        result = self._ingest_new(prep)
        return result if result is not None else self._ingest_locked(prep)

    def _ingest_new(self, prep: PreparedBatch) -> IngestResult | None:
        """A batch the chain takes as new, the common case. Its records are copied before the
        chain row is locked, so that lock, which a worker holding another batch of this
        gateway waits for, covers only the chain check, the batch row and the commit, not the
        COPY. None, with nothing written, when a record id is already held (a COPY of the
        same ids by another worker is waited for, then fails) or the chain does not take the
        batch as new: the caller then takes the locked path."""
        p = prep.batch.payload
        try:
            with self.conn.transaction() as tx, self.conn.cursor() as cur:
                with cur.copy(COPY_RECORDS) as copy:
                    copy.write(prep.copy_text)
                contiguous, gaps, near = self._lock(p.gw, p.seq)
                if self._chain_status(cur, prep.batch, gaps, near)[0] != "stored":
                    raise psycopg.Rollback(tx)
                with self.conn.pipeline():  # the batch row and the rows above the head: 1 trip
                    self._insert_batch(cur, prep)
                    above = self._held_above(p.gw, contiguous)
                return self._advance_result(cur, p.gw, p.seq, "stored", contiguous, gaps,
                                            above.fetchall())
        except psycopg.errors.UniqueViolation:
            pass  # a record id is held: re-enrolled gateway, restored store, a re-send
        return None

    def _ingest_locked(self, prep: PreparedBatch) -> IngestResult:
        """Lock, then check and store (records with ON CONFLICT): duplicates, forks and
        record ids already held."""
        p = prep.batch.payload
        with self.conn.transaction(), self.conn.cursor() as cur:
            contiguous, gaps, near = self._lock(p.gw, p.seq)
            status, detail = self._chain_status(cur, prep.batch, gaps, near)
            if detail is not None:
                self._anomaly(cur, p.gw, p.seq, status, detail)
            if status == "stored":
                self._insert_batch(cur, prep)
                self._insert_records(cur, prep)
            rows = self._held_above(p.gw, contiguous).fetchall()
            return self._advance_result(cur, p.gw, p.seq, status, contiguous, gaps, rows)

    def _advance_result(self, cur: psycopg.Cursor[Any], gw: str, seq: int, status: str,
                        contiguous: int, gaps: bool, above: list[Any]) -> IngestResult:
        before = contiguous
        contiguous, gap = self._advance(cur, gw, contiguous, gaps, above)
        if gap and status == "stored" and seq > before + 1:
            self._anomaly(cur, gw, seq, "gap", f"seq {contiguous + 1} missing")
        return IngestResult(status, contiguous, contiguous + 1 if gap else None, gap)

    def _lock(self, gw: str, seq: int) -> tuple[int, bool, dict[int, tuple[bytes, bytes]]]:
        """Lock the gateway's chain row (made at its first batch) and read the batches next
        to `seq` once the lock is held: three statements in one round trip (pipeline)."""
        with self.conn.pipeline():
            self.conn.execute("INSERT INTO gateways (gw) VALUES (%s) ON CONFLICT DO NOTHING",
                              (gw,))
            locked = self.conn.execute(
                "SELECT g.contiguous, g.has_known_gaps, e.revoked_ms FROM gateways g "
                "LEFT JOIN enrolment e ON e.gw = g.gw WHERE g.gw = %s FOR UPDATE OF g", (gw,))
            near = self.conn.execute("SELECT seq, sha256, prev FROM batches WHERE gw = %s "
                                     "AND seq BETWEEN %s AND %s", (gw, seq - 1, seq + 1))
        row = locked.fetchone()
        assert row is not None
        if row[2] is not None:
            raise GatewayRevoked(f"gateway {gw!r} is revoked")
        return int(row[0]), bool(row[1]), {
            int(s): (bytes(sha), bytes(prev)) for s, sha, prev in near.fetchall()}

    def _gap_end(self, cur: psycopg.Cursor[Any], gw: str, seq: int) -> tuple[int, bytes] | None:
        row = cur.execute("SELECT last, sha256 FROM known_gaps WHERE gw = %s AND first <= %s "
                          "AND last >= %s ORDER BY last DESC LIMIT 1", (gw, seq, seq)).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def _chain_status(self, cur: psycopg.Cursor[Any], batch: VerifiedBatch, gaps: bool,
                      near: dict[int, tuple[bytes, bytes]]) -> tuple[str, str | None]:
        """stored / duplicate / fork (with the fork's detail), read only."""
        p = batch.payload
        if p.seq in near:
            if near[p.seq][0] == batch.sha256:
                return "duplicate", None
            return "fork", "a different batch holds this seq"
        before: bytes | None = bytes(32) if p.seq == 1 else None
        if p.seq - 1 in near:
            before = near[p.seq - 1][0]
        elif gaps and p.seq > 1 and (end := self._gap_end(cur, p.gw, p.seq - 1)) is not None \
                and end[0] == p.seq - 1:
            before = end[1]
        if before is not None and before != p.prev:
            return "fork", "prev differs from the stored seq-1"
        if p.seq + 1 in near and near[p.seq + 1][1] != batch.sha256:
            return "fork", "stored seq+1 does not chain to it"
        return "stored", None

    def _insert_batch(self, cur: psycopg.Cursor[Any], prep: PreparedBatch) -> None:
        p = prep.batch.payload
        cur.execute("INSERT INTO batches VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (p.gw, p.seq, prep.batch.sha256, p.prev, prep.batch.raw,
                     int(time.time() * 1000), len(prep.ids)))

    def _insert_records(self, cur: psycopg.Cursor[Any], prep: PreparedBatch) -> None:
        """Some record id is already held (re-enrolled gateway, restored store): one statement
        with ON CONFLICT stores the others and counts those."""
        p = prep.batch.payload
        cur.execute(
            "INSERT INTO records (gw, id, seq, kind, ts_ms, meter, body) "
            "SELECT %s, i, %s, k, t, m, b::json FROM unnest(%s::bigint[], %s::text[], "
            "%s::bigint[], %s::text[], %s::text[]) AS u(i, k, t, m, b) ON CONFLICT DO NOTHING",
            (p.gw, p.seq, prep.ids, prep.kinds, prep.ts, prep.meters, prep.bodies))
        dupes = len(prep.ids) - cur.rowcount
        if dupes:
            self._anomaly(cur, p.gw, p.seq, "duplicate_record", f"{dupes} record ids already held")

    def _held_above(self, gw: str, contiguous: int) -> psycopg.Cursor[Any]:
        return self.conn.execute("SELECT seq, received_ms FROM batches WHERE gw = %s "
                                 "AND seq > %s", (gw, contiguous))

    def _advance(self, cur: psycopg.Cursor[Any], gw: str, contiguous: int, gaps: bool,
                 rows: list[Any]) -> tuple[int, bool]:
        """Move `contiguous` over held batches (`rows`: seq, received_ms of those above it)
        and declared gaps; (new value, any held above it past the grace)."""
        held = {int(r[0]) for r in rows}
        start = contiguous
        while True:
            if contiguous + 1 in held:
                contiguous += 1
            elif gaps and (end := self._gap_end(cur, gw, contiguous + 1)) is not None:
                contiguous = end[0]
            else:
                break
        cur.execute("UPDATE gateways SET contiguous = %s, last_batch_ms = %s WHERE gw = %s",
                    (contiguous, int(time.time() * 1000), gw))
        if contiguous != start:
            LOGGER.debug("chain_advanced", extra={"gw": gw, "contiguous": contiguous})
        cutoff = int(time.time() * 1000) - self.gap_grace_ms
        return contiguous, any(int(s) > contiguous and int(ms) <= cutoff for s, ms in rows)

    def _anomaly(self, cur: psycopg.Cursor[Any], gw: str, seq: int, kind: str,
                 detail: str) -> str:
        LOGGER.warning("chain_" + kind, extra={"gw": gw, "seq": seq, "detail": detail})
        cur.execute("INSERT INTO anomalies (gw, seq, kind, detail, ts_ms) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (gw, seq, kind, detail, int(time.time() * 1000)))
        return kind

    def record_unavailable(self, gone: Unavailable) -> IngestResult:
        """A declared gap, recorded once; the chain moves on past it (as the SQLite store)."""
        self._reconnect_if_broken()
        with self.conn.transaction(), self.conn.cursor() as cur:
            contiguous, _gaps, _near = self._lock(gone.gw, gone.last + 1)
            status = self._check_gap(cur, gone, contiguous)
            rows = self._held_above(gone.gw, contiguous).fetchall()
            contiguous, gap = self._advance(cur, gone.gw, contiguous, True, rows)
        return IngestResult(status, contiguous, contiguous + 1 if gap else None, gap)

    def _check_gap(self, cur: psycopg.Cursor[Any], gone: Unavailable, contiguous: int) -> str:
        gw = gone.gw
        if gone.last <= contiguous or cur.execute(
                "SELECT 1 FROM known_gaps WHERE gw = %s AND first = %s AND last = %s",
                (gw, gone.first, gone.last)).fetchone() is not None:
            return "held"
        row = cur.execute("SELECT prev FROM batches WHERE gw = %s AND seq = %s",
                          (gw, gone.last + 1)).fetchone()
        if row is not None and bytes(row[0]) != gone.sha256:
            return self._anomaly(cur, gw, gone.first, "fork",
                                 f"seq {gone.last + 1} does not chain to the declared gap end")
        cur.execute("INSERT INTO known_gaps VALUES (%s, %s, %s, %s)",
                    (gw, gone.first, gone.last, gone.sha256))
        cur.execute("UPDATE gateways SET has_known_gaps = true WHERE gw = %s", (gw,))
        return self._anomaly(cur, gw, gone.first, "known_gap",
                             f"seq {gone.first}..{gone.last} unavailable from the gateway")

    def contiguous(self, gw: str) -> int:
        row = self.conn.execute("SELECT contiguous FROM gateways WHERE gw = %s",
                                (gw,)).fetchone()
        return 0 if row is None else int(row[0])

    def anomalies(self, gw: str | None = None) -> list[tuple[str, int, str, str]]:
        sql = "SELECT gw, seq, kind, detail FROM anomalies"
        args: tuple[str, ...] = ()
        if gw is not None:
            sql, args = sql + " WHERE gw = %s", (gw,)
        return [(r[0], int(r[1]), r[2], r[3])
                for r in self.conn.execute((sql + " ORDER BY aid").encode(), args)]

    def record_ids(self, gw: str) -> list[int]:
        return [int(r[0]) for r in self.conn.execute(
            "SELECT id FROM records WHERE gw = %s ORDER BY id", (gw,))]

    def export(self, gw: str | None = None) -> Iterator[dict[str, Any]]:
        """Stored records as dicts (gw, id, seq, kind, t_ms, body), by gateway and id."""
        return stream_records(self, ExportQuery(gw=gw))
