"""Opening: PRAGMAs, and a clear StorageError naming the path for every bad file."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from storage import db
from storage.errors import (
    NotAGatewayStore,
    SchemaTooNew,
    StorageError,
    StoreCorrupt,
    StoreUnwritable,
)
from storage.store import Store
from tests.storage.conftest import reading


def _pragma(store: Store, name: str) -> object:
    return store.db.execute(f"PRAGMA {name}").fetchone()[0]


def test_new_store_has_the_documented_pragmas(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "g.db")
    assert _pragma(store, "journal_mode") == "wal"
    assert _pragma(store, "synchronous") == 2  # FULL
    assert _pragma(store, "foreign_keys") == 1
    assert _pragma(store, "auto_vacuum") == 2  # INCREMENTAL
    assert _pragma(store, "application_id") == db.APPLICATION_ID
    assert _pragma(store, "page_size") == db.PAGE_SIZE
    assert _pragma(store, "wal_autocheckpoint") == db.WAL_AUTOCHECKPOINT_PAGES
    assert _pragma(store, "journal_size_limit") == db.JOURNAL_SIZE_LIMIT_BYTES
    assert _pragma(store, "busy_timeout") == db.BUSY_TIMEOUT_MS
    assert {"meters", "readings", "events", "outbox", "quantities"} <= set(store.db.table_names())
    store.close()


def test_reopen_keeps_data(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "g.db")
    store.add_readings([reading("m", 1)])
    store.close()
    again = Store.open(tmp_path / "g.db", create=False)
    assert again.last_readings("m", 1)[0].ts_ms == 1
    again.close()


def test_missing_file_is_not_created_without_create(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    with pytest.raises(StorageError, match=r"absent.db.*does not exist"):
        Store.open(path, create=False)
    assert not path.exists()


def test_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(NotAGatewayStore, match=r"other.db.*application_id"):
        Store.open(path)
    # Refused before anything changed: still in its rollback journal (not switched to WAL).
    assert path.read_bytes() == before
    assert not Path(f"{path}-wal").exists()


@pytest.mark.parametrize(("content", "what"), [(b"", "empty file"), (b"hello" * 500, "header")])
def test_non_sqlite_file_is_corrupt(tmp_path: Path, content: bytes, what: str) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(content)
    with pytest.raises(StoreCorrupt, match=f"junk.db.*{what}"):
        Store.open(path)
    assert path.read_bytes() == content  # never replaced by a new database


def _damaged_copy(tmp_path: Path, offset: int, length: int) -> Path:
    path = tmp_path / "damaged.db"
    store = Store.open(path)
    store.add_readings([reading(f"m{i}", i) for i in range(400)])
    store.close()
    data = bytearray(path.read_bytes())
    data[offset : offset + length] = b"\xa5" * length
    path.write_bytes(bytes(data))
    return path


def test_damaged_schema_page_is_corrupt_at_open(tmp_path: Path) -> None:
    path = _damaged_copy(tmp_path, 100, 2000)
    with pytest.raises(StoreCorrupt, match=r"damaged.db"):
        Store.open(path)


def test_damaged_data_page_is_found_by_verify(tmp_path: Path) -> None:
    path = _damaged_copy(tmp_path, db.PAGE_SIZE * 12 + 8, 600)
    with pytest.raises(StoreCorrupt, match=r"damaged.db"):
        Store.open(path, verify=True)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(SchemaTooNew, match=r"g.db.*999"):
        Store.open(path)


def test_missing_directory_is_unwritable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnwritable, match="nowhere"):
        Store.open(tmp_path / "nowhere" / "g.db")


def test_directory_as_path_is_unwritable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnwritable, match="is a directory"):
        Store.open(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_file_is_unwritable(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    Store.open(path).close()
    path.chmod(0o444)
    with pytest.raises(StoreUnwritable, match=r"g.db"):
        Store.open(path)


def test_leftover_of_interrupted_creation_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "g.db.creating").write_bytes(b"half made")
    store = Store.open(tmp_path / "g.db")
    assert not (tmp_path / "g.db.creating").exists()
    store.close()
