"""Migration 0005 (analytics tables) on a 0004 store: its readings stay, intervals go in."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

from storage import analytics, db
from storage.migrations import MIGRATIONS_DIR, apply_migrations, latest_version, schema_version
from storage.records import ReadingSet, StoredValue
from storage.store import Store


def test_a_0004_store_keeps_its_readings_and_takes_intervals(tmp_path: Path) -> None:
    up_to_4 = tmp_path / "v4"
    up_to_4.mkdir()
    for number in range(1, 5):
        shutil.copy(sorted(MIGRATIONS_DIR.glob(f"{number:04d}_*.sql"))[0], up_to_4)
    path = tmp_path / "g.db"
    conn = db.open_connection(path, create=True)
    apply_migrations(conn, path, up_to_4)
    assert schema_version(conn) == 4
    conn.close()

    store = Store.open(path)
    assert schema_version(store.db.conn) == latest_version() >= 5
    store.upsert_meter("m1")
    store.add_readings([ReadingSet("m1", 1000, (StoredValue("volume", Decimal("1.5"), "m3"),))])
    with store.transaction() as tx:
        ref = analytics.insert_interval(tx, analytics.IntervalRow(
            "m1", "volume", "15min", 0, 900_000, Decimal("0.5"), "measured",
            end_value=Decimal("1.5")))
        assert ref > 0
        row = analytics.last_interval(tx, "m1", "volume", "15min")
    assert row is not None and row.value == Decimal("0.5") and row.end_value == Decimal("1.5")
    assert [r.ts_ms for r in store.last_readings("m1", 5)] == [1000]
    store.close()
