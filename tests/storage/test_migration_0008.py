"""Migration 0008 (meter_records) on a 0007 store with readings in it: the readings stay, the
marks start empty, and a dated set advances its series' mark in the transaction that stores it
(never backwards, and not when that transaction rolls back)."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from storage import db
from storage.errors import InvalidRecord
from storage.migrations import MIGRATIONS_DIR, apply_migrations, latest_version, schema_version
from storage.records import FLAG_METER_RECORD, ReadingSet, StoredValue
from storage.store import Store

VALUE = (StoredValue("import_active_energy", Decimal("12.5"), "kWh"),)


def store_from_0007(tmp_path: Path) -> Store:
    up_to_7 = tmp_path / "v7"
    up_to_7.mkdir()
    for number in range(1, 8):
        shutil.copy(sorted(MIGRATIONS_DIR.glob(f"{number:04d}_*.sql"))[0], up_to_7)
    path = tmp_path / "g.db"
    conn = db.open_connection(path, create=True)
    apply_migrations(conn, path, up_to_7)
    conn.close()
    return Store.open(path)


def record(ts_ms: int, series: str = "load_profile") -> ReadingSet:
    return ReadingSet("m-1", ts_ms, VALUE, FLAG_METER_RECORD, series=series)


def test_a_0007_store_keeps_its_readings_and_gets_empty_marks(tmp_path: Path) -> None:
    store = store_from_0007(tmp_path)
    try:
        assert schema_version(store.db.conn) == latest_version() >= 8
        store.add_readings([ReadingSet("m-1", 1000, VALUE)])
        assert store.meter_record_marks() == {}
        store.add_readings([record(5000), record(3000), record(9000, "billing")])
        assert store.meter_record_marks() == {("m-1", "load_profile"): 5000,
                                              ("m-1", "billing"): 9000}
        store.add_readings([record(4000)])  # an older record read again: the mark stays
        assert store.meter_record_marks()[("m-1", "load_profile")] == 5000
        assert [r.ts_ms for r in store.readings_between("m-1", 0, 10_000)] == \
            [1000, 3000, 4000, 5000, 9000]
    finally:
        store.close()


def test_a_rolled_back_commit_leaves_the_mark_where_it_was(tmp_path: Path) -> None:
    store = store_from_0007(tmp_path)
    try:
        store.add_readings([record(5000)])

        def fail(tx: object, stored: object) -> None:
            raise RuntimeError("the hook failed")

        with pytest.raises(RuntimeError):
            store.add_readings([record(8000)], in_transaction=fail)
        assert store.meter_record_marks() == {("m-1", "load_profile"): 5000}
    finally:
        store.close()


@pytest.mark.parametrize(("flags", "series"), [(FLAG_METER_RECORD, ""), (0, "load_profile"),
                                                (FLAG_METER_RECORD, "Load Profile")])
def test_a_record_needs_its_flag_and_a_series_name(tmp_path: Path, flags: int,
                                                   series: str) -> None:
    store = store_from_0007(tmp_path)
    try:
        with pytest.raises(InvalidRecord, match="meter's own record"):
            store.add_readings([ReadingSet("m-1", 1, VALUE, flags, series=series)])
    finally:
        store.close()
