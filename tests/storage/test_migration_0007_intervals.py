"""Migration 0007 rebuilds analytics_intervals indexed by end only: a 0006 store keeps its
intervals and their ids."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

from storage import analytics, db
from storage.migrations import MIGRATIONS_DIR, apply_migrations, latest_version, schema_version
from storage.store import Store


def test_a_0006_store_keeps_its_intervals_and_their_ids(tmp_path: Path) -> None:
    up_to_6 = tmp_path / "v6"
    up_to_6.mkdir()
    for number in range(1, 7):
        shutil.copy(sorted(MIGRATIONS_DIR.glob(f"{number:04d}_*.sql"))[0], up_to_6)
    path = tmp_path / "g.db"
    conn = db.open_connection(path, create=True)
    apply_migrations(conn, path, up_to_6)
    assert schema_version(conn) == 6
    for n in range(3):
        conn.execute("INSERT INTO analytics_intervals (id, meter_id, quantity, grid, start_ms, "
                     "end_ms, value, quality, end_value) VALUES (?, 'm1', 'volume', '15min', ?, "
                     "?, '0.5', 'measured', ?)", (40 + n, n * 900_000, (n + 1) * 900_000,
                                                  str(n + 1)))
    conn.commit()
    conn.close()

    store = Store.open(path)
    assert schema_version(store.db.conn) == latest_version() >= 7
    with store.transaction() as tx:
        rows = analytics.intervals_between(tx, "m1", 0, 10**9)
        assert [(r.id, r.end_value) for r in rows] == [(40, Decimal(1)), (41, Decimal(2)),
                                                       (42, Decimal(3))]
        assert [r[2] for r in analytics.recent_intervals(tx, "15min", 1_800_000)] == [
            1_800_000, 2_700_000]
        assert analytics.values_ending_at(tx, "15min", 900_000) == {("m1", "volume"):
                                                                   Decimal("0.5")}
    indexes = {r[0] for r in store.db.conn.execute(
        "SELECT name FROM sqlite_master WHERE tbl_name = 'analytics_intervals' AND type = 'index'")}
    assert indexes == {"analytics_intervals_end"}
    store.close()
