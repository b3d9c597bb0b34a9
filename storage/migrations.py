"""Numbered SQL migrations (`migrations/NNNN_name.sql`) applied in order, one transaction each.

`PRAGMA user_version` holds the number of the last migration applied. Files are found by name,
so migrations added by other packages (0002 uplink, 0003 prepay, ...) need no code change.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from storage.errors import DATABASE_ERRORS, SchemaTooNew, StorageError, translate

LOGGER = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file: its number and where it lives."""

    number: int
    path: Path


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Migration files of `directory` sorted by number; gaps and duplicates are errors."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise StorageError(f"{path}: migration file name must look like 0001_name.sql")
        found.append(Migration(int(match.group(1)), path))
    found.sort(key=lambda m: m.number)
    for expected, migration in enumerate(found, start=1):
        if migration.number != expected:
            raise StorageError(
                f"{migration.path}: migration number {migration.number} found where "
                f"{expected} was expected (gap or duplicate in {directory})"
            )
    return found


def latest_version(directory: Path = MIGRATIONS_DIR) -> int:
    """The schema version this code produces: the highest migration number."""
    migrations = discover(directory)
    return migrations[-1].number if migrations else 0


def schema_version(conn: sqlite3.Connection) -> int:
    """The migration number recorded in the database."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def apply_migrations(
    conn: sqlite3.Connection, db_path: Path | str, directory: Path = MIGRATIONS_DIR
) -> list[int]:
    """Apply every migration newer than the database, each in its own transaction.

    `conn` must be in autocommit mode (isolation_level=None). Returns the numbers applied.
    Raises SchemaTooNew when the database is ahead of the files, naming the path.
    """
    migrations = discover(directory)
    current = schema_version(conn)
    latest = migrations[-1].number if migrations else 0
    if current > latest:
        raise SchemaTooNew(
            f"{db_path}: schema version {current} is newer than this code knows ({latest}); "
            "upgrade the gateway software"
        )
    applied: list[int] = []
    for migration in migrations:
        if migration.number > current:
            _apply_one(conn, db_path, migration)
            applied.append(migration.number)
    return applied


def _apply_one(conn: sqlite3.Connection, db_path: Path | str, migration: Migration) -> None:
    sql = migration.path.read_text(encoding="utf-8")
    # executescript commits any open transaction first, so the whole file, the version bump
    # and the COMMIT go in one script: a failure leaves the transaction open to roll back.
    script = f"BEGIN IMMEDIATE;\n{sql}\n;PRAGMA user_version = {migration.number};\nCOMMIT;"
    try:
        conn.executescript(script)
    except DATABASE_ERRORS as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        error = translate(exc, db_path, f"migration {migration.path.name}")
        raise type(error)(str(error)) from exc
    LOGGER.info(
        "store_migrated",
        extra={"path": str(db_path), "migration": migration.path.name, "version": migration.number},
    )
