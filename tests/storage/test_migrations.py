"""Migrations: numbered files in order, one transaction each, user_version, upgrades kept."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from storage import db
from storage.errors import StorageError
from storage.migrations import MIGRATIONS_DIR, apply_migrations, latest_version, schema_version
from storage.store import Store


def _fresh(path: Path) -> sqlite3.Connection:
    return db.open_connection(path, create=True)


def _write(directory: Path, name: str, sql: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(sql, encoding="utf-8")


def test_fixture_schema_0_to_1_to_2_keeps_rows(tmp_path: Path) -> None:
    files = tmp_path / "migrations"
    _write(files, "0001_first.sql", "CREATE TABLE t (x INTEGER NOT NULL);")
    conn = _fresh(tmp_path / "g.db")
    assert schema_version(conn) == 0
    assert apply_migrations(conn, "g.db", files) == [1]
    conn.executemany("INSERT INTO t (x) VALUES (?)", [(1,), (2,)])
    _write(files, "0002_second.sql", "ALTER TABLE t ADD COLUMN y INTEGER; UPDATE t SET y = x * 10;")
    assert apply_migrations(conn, "g.db", files) == [2]
    assert schema_version(conn) == 2
    assert conn.execute("SELECT x, y FROM t ORDER BY x").fetchall() == [(1, 10), (2, 20)]
    assert apply_migrations(conn, "g.db", files) == []  # idempotent
    conn.close()


def test_database_made_by_0001_upgrades_to_latest_with_its_data(tmp_path: Path) -> None:
    only_first = tmp_path / "v1"
    only_first.mkdir()
    shutil.copy(sorted(MIGRATIONS_DIR.glob("0001_*.sql"))[0], only_first)
    path = tmp_path / "g.db"
    conn = _fresh(path)
    apply_migrations(conn, path, only_first)
    conn.execute("INSERT INTO meters (id, protocol) VALUES ('old-meter', 'modbus')")
    conn.execute("INSERT INTO events (ts_ms, kind, severity) VALUES (5, 'boot', 'info')")
    conn.close()
    store = Store.open(path)
    assert schema_version(store.db.conn) == latest_version()
    assert store.upsert_meter("old-meter") == 1
    assert store.recent_events(1)[0].kind == "boot"
    store.close()


def test_failing_migration_rolls_back_entirely(tmp_path: Path) -> None:
    files = tmp_path / "migrations"
    _write(files, "0001_ok.sql", "CREATE TABLE t (x INTEGER);")
    _write(files, "0002_bad.sql", "CREATE TABLE half (x INTEGER);\nINSERT INTO nowhere VALUES (1);")
    conn = _fresh(tmp_path / "g.db")
    with pytest.raises(StorageError, match=r"0002_bad.sql"):
        apply_migrations(conn, "g.db", files)
    assert schema_version(conn) == 1
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "t" in tables and "half" not in tables
    assert not conn.in_transaction
    conn.close()


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["0001_a.sql", "0003_c.sql"], "0003_c.sql.*gap or duplicate"),
        (["0001_a.sql", "0001_b.sql"], "0001_b.sql.*gap or duplicate"),
        (["1_a.sql"], "1_a.sql.*0001_name.sql"),
    ],
)
def test_bad_migration_sets_are_refused(tmp_path: Path, names: list[str], message: str) -> None:
    for name in names:
        _write(tmp_path / "m", name, "SELECT 1;")
    with pytest.raises(StorageError, match=message):
        latest_version(tmp_path / "m")


def test_shipped_migrations_are_numbered_without_gaps() -> None:
    assert latest_version() >= 1
