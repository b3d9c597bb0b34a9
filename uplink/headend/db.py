"""Open the head-end store named by `--db`: a file path (SQLite, one machine) or a
`postgresql://` URL (a fleet: several workers, several machines)."""

from pathlib import Path
from typing import Any, Protocol

from uplink.codec import Unavailable
from uplink.headend.store import HeadendStore, IngestResult
from uplink.headend.verify import VerifiedBatch

PG_SCHEMES = ("postgresql://", "postgres://")


class Store(Protocol):
    """What the worker and the tools need of either backend."""

    @property
    def backend(self) -> str: ...
    @property
    def path(self) -> Any: ...

    def prepare(self, batch: VerifiedBatch) -> Any: ...
    def ingest(self, batch: Any) -> IngestResult: ...
    def record_unavailable(self, gone: Unavailable) -> IngestResult: ...
    def contiguous(self, gw: str) -> int: ...
    def record_ids(self, gw: str) -> list[int]: ...
    def anomalies(self, gw: str | None = None) -> list[tuple[str, int, str, str]]: ...
    def close(self) -> None: ...


def is_postgres(target: str) -> bool:
    return target.startswith(PG_SCHEMES)


def open_store(target: str | Path, *, create: bool = True, gap_grace_ms: int = 0) -> Store:
    """`create=False`: the tools that only read refuse a target that is not a head-end store.
    `gap_grace_ms` (PostgreSQL, several workers): see `PgStore`."""
    text = str(target)
    if is_postgres(text):
        from uplink.headend.pg_store import PgStore  # psycopg is the optional [headend] extra
        return PgStore(text, create=create, gap_grace_ms=gap_grace_ms)
    return HeadendStore(Path(text), create=create)


def execute(store: Any, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> Any:
    """Run one statement written with `%s` marks on either backend; returns the cursor."""
    if store.backend == "postgresql":
        return store.conn.execute(sql.encode(), args)
    return store.db.execute(sql.replace("%s", "?"), args)


def record_status(store: Any, gw: str, status: str, ts_ms: int) -> None:
    """The gateway's retained `status` (online / offline), as the fleet page shows it.

    On PostgreSQL without waiting for the WAL flush (`synchronous_commit` off for this one
    transaction, in one round trip): a status is acked to nobody and the broker hands the
    retained one again at the next connection, while every worker records every gateway's
    status, so a fleet's reconnect would otherwise cost each worker a disk flush per gateway
    ahead of the batches in its store thread."""
    sql = ("INSERT INTO gateway_status (gw, status, ts_ms) VALUES (%s, %s, %s) "
           "ON CONFLICT (gw) DO UPDATE SET status = excluded.status, ts_ms = excluded.ts_ms")
    if store.backend != "postgresql":
        execute(store, sql, (gw, status, ts_ms))
        return
    with store.conn.pipeline(), store.conn.transaction():
        store.conn.execute("SET LOCAL synchronous_commit = off")
        store.conn.execute(sql.encode(), (gw, status, ts_ms))


def open_for_update(target: str | Path) -> Store:
    """A store the tools write to (enrolment, accounts). An SQLite file must exist and be a
    head-end's, so a mistyped `--db` is refused instead of becoming a new empty file; a
    PostgreSQL database exists once it accepts the connection, and gets the schema if it has
    none yet (enrolling gateways before the first `serve` is the usual order)."""
    if not is_postgres(str(target)):
        open_store(target, create=False).close()
    return open_store(target)
