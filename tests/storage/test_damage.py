"""Fuzzing the file: any damage gives a StorageError (or still works), never another exception."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from storage import db
from storage.errors import StorageError
from storage.store import Store
from tests.storage.conftest import reading


@pytest.fixture(scope="module")
def pristine() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pristine.db"
        store = Store.open(path)
        store.add_readings([reading(f"m{i % 7}", i) for i in range(300)])
        for i in range(50):
            store.add_event("tick", meter_id="m1", data={"i": i}, ts_ms=i)
        store.close()
        yield path


def _use(path: Path) -> None:
    store = Store.open(path, create=False, verify=True)
    try:
        store.last_readings("m1", 5)
        store.pending_outbox(50)
        store.recent_events(5)
        store.add_readings([reading("m1", 10_000)])
    finally:
        store.close()


@settings(max_examples=40, deadline=None)
@given(
    hits=st.lists(
        st.tuples(st.integers(0, 40 * db.PAGE_SIZE), st.binary(min_size=1, max_size=64)),
        min_size=1, max_size=4,
    )
)
# Found by hypothesis on a fresh clone: PRAGMA journal_mode raised UnicodeDecodeError.
@example(hits=[(163834, b"\x80")])
def test_damaged_file_gives_storage_error_only(pristine: Path, hits: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hit.db"
        shutil.copy(pristine, path)
        data = bytearray(path.read_bytes())
        for offset, garbage in hits:
            offset %= len(data)
            data[offset : offset + len(garbage)] = garbage
        path.write_bytes(bytes(data[: len(path.read_bytes())]))
        try:
            _use(path)
        except StorageError as exc:
            assert "hit.db" in str(exc)


@settings(max_examples=40, deadline=None)
@given(tail=st.binary(max_size=300))
def test_sqlite_header_with_garbage_gives_storage_error(tail: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "junk.db"
        path.write_bytes(db.SQLITE_MAGIC + tail)
        with pytest.raises(StorageError, match="junk"):
            _use(path)
