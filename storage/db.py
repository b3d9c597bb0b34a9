"""Opening the SQLite file: refuse what is not ours, create atomically, set the PRAGMAs."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from storage.errors import (
    DATABASE_ERRORS,
    NotAGatewayStore,
    StorageError,
    StoreCorrupt,
    StoreUnwritable,
    translate,
)

LOGGER = logging.getLogger(__name__)

# "MGW1": marks the file as a meter-gateway store so a foreign SQLite file is refused.
APPLICATION_ID = 0x4D475731
SQLITE_MAGIC = b"SQLite format 3\x00"
# 1 KiB: with the uplink on, each commit touches a dozen b-trees by a few bytes each (readings,
# outbox and its indexes, batches, chain state); every touched page is a WAL frame, so smaller
# pages cut the bytes per commit (hil/bench/write_budget.py: 651 -> 271 bytes per value at 10
# meters, 123 -> 89 at 100). Takes effect for new stores; an existing one keeps its size.
PAGE_SIZE = 1024
# Another process (the console CLI) may hold the write lock for a short transaction.
BUSY_TIMEOUT_MS = 5000
# Checkpoint every 4 MiB of WAL (4096 pages of 1 KiB): a page rewritten by many commits is
# written to the file once per checkpoint; measured wear is flat beyond (writes are appended at
# the end of each b-tree), and a small WAL reads back faster.
WAL_AUTOCHECKPOINT_PAGES = 4096
# After a checkpoint the WAL is truncated to this size, so it cannot fill a small card.
JOURNAL_SIZE_LIMIT_BYTES = 8 * 1024 * 1024
_CREATING_SUFFIX = ".creating"


def open_connection(path: Path, *, create: bool, verify: bool = False) -> sqlite3.Connection:
    """Open the store file at `path` (autocommit mode) with every PRAGMA set.

    A missing file is created only when `create` is true, atomically (a crash during creation
    never leaves a half-made file at `path`). Raises a StorageError subclass naming `path`.
    """
    if not path.exists():
        if not create:
            raise StorageError(f"{path}: store file does not exist (and create=False)")
        _create_empty(path)
    _check_file(path)
    try:
        conn = sqlite3.connect(
            f"file:{quote(str(path))}?mode=rw",
            uri=True,
            isolation_level=None,
            check_same_thread=True,  # one owner thread (docs/storage.md)
            timeout=BUSY_TIMEOUT_MS / 1000,
        )
    except DATABASE_ERRORS as exc:
        raise translate(exc, path, "open") from exc
    try:
        # Identity first: a foreign file must be refused before any PRAGMA changes it (WAL).
        _check_identity(conn, path)
        _configure(conn, path)
        if verify:
            _check_integrity(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise StoreUnwritable(f"{path}: is a directory, not a store file")
    if not os.access(path.parent, os.W_OK):
        raise StoreUnwritable(f"{path.parent}: directory not writable (WAL needs its -wal file)")
    try:
        with path.open("r+b") as handle:
            header = handle.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise StoreUnwritable(f"{path}: cannot open for writing: {exc.strerror}") from exc
    if header != SQLITE_MAGIC:
        what = "empty file" if not header else "no SQLite header"
        raise StoreCorrupt(f"{path}: not an SQLite database ({what})")


def _configure(conn: sqlite3.Connection, path: Path) -> None:
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT_BYTES}")
    except DATABASE_ERRORS as exc:
        raise translate(exc, path, "configure") from exc
    if str(mode).lower() != "wal":
        raise StoreUnwritable(f"{path}: cannot switch to WAL journal (got {mode!r})")


def _check_identity(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a file that is not ours; only reads (the file is left exactly as it was)."""
    try:
        # Reading the schema parses page 1 and sqlite_master: catches most damage cheaply.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    except DATABASE_ERRORS as exc:
        raise translate(exc, path, "read schema") from exc
    if app_id != APPLICATION_ID:
        raise NotAGatewayStore(
            f"{path}: SQLite database of another application "
            f"(application_id {app_id:#x}, expected {APPLICATION_ID:#x})"
        )


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    try:
        problems = conn.execute("PRAGMA quick_check").fetchall()
    except DATABASE_ERRORS as exc:
        raise translate(exc, path, "integrity check") from exc
    if problems != [("ok",)]:
        detail = "; ".join(str(row[0]) for row in problems[:3])
        raise StoreCorrupt(f"{path}: integrity check failed: {detail}")


def _create_empty(path: Path) -> None:
    """Make an empty gateway database beside `path`, then rename it into place."""
    tmp = path.with_name(path.name + _CREATING_SUFFIX)
    if not os.access(path.parent, os.W_OK):
        raise StoreUnwritable(f"{path.parent}: directory missing or not writable")
    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
        leftover.unlink(missing_ok=True)
    try:
        conn = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            # page_size and auto_vacuum only take effect before the first table exists.
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute("PRAGMA journal_mode = WAL")
        finally:
            conn.close()
        _fsync_file(tmp)
        os.replace(tmp, path)
        _fsync_file(path.parent)
    except (sqlite3.Error, UnicodeDecodeError, OSError) as exc:
        raise StoreUnwritable(f"{path}: cannot create store: {exc}") from exc
    LOGGER.info("store_created", extra={"path": str(path)})


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ConnectionView:
    """The store's connection as tools and tests read it: `conn`, `execute`, `table_names`.

    A plain class rather than sqlite-utils' `Database`, whose import (click, dateutil, ...)
    cost the running gateway about 4 MB of memory for these three names."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: tuple[object, ...] | list[object] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def table_names(self) -> list[str]:
        return [name for (name,) in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
