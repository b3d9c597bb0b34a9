"""Migration 0007 (balance results, active alarms) on a 0006 store: its intervals stay."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

from storage import analytics, db
from storage.migrations import MIGRATIONS_DIR, apply_migrations, latest_version, schema_version
from storage.store import Store


def test_a_0006_store_keeps_its_intervals_and_takes_balances_and_alarms(tmp_path: Path) -> None:
    up_to_6 = tmp_path / "v6"
    up_to_6.mkdir()
    for number in range(1, 7):
        shutil.copy(sorted(MIGRATIONS_DIR.glob(f"{number:04d}_*.sql"))[0], up_to_6)
    path = tmp_path / "g.db"
    conn = db.open_connection(path, create=True)
    apply_migrations(conn, path, up_to_6)
    assert schema_version(conn) == 6
    conn.execute("INSERT INTO analytics_intervals (meter_id, quantity, grid, start_ms, end_ms, "
                 "value, quality) VALUES ('m1', 'volume', '15min', 0, 900000, '0.5', 'measured')")
    conn.commit()
    conn.close()

    store = Store.open(path)
    assert schema_version(store.db.conn) == latest_version() >= 7
    with store.transaction() as tx:
        assert [r.value for r in analytics.intervals_between(tx, "m1", 0, 10**9)] == [
            Decimal("0.5")]
        row = analytics.BalanceRow("trafo", 0, 900_000, "complete", Decimal(10), Decimal("9.3"),
                                   Decimal("0.7"), Decimal("7.00"))
        assert analytics.insert_balance(tx, row) is not None
        assert analytics.insert_balance(tx, row) is None
        analytics.set_alarm(tx, "balance_loss:trafo", "balance_loss", "trafo", "warning", 5,
                            {"loss_percent": Decimal("7.00")})
    with store.transaction() as tx:
        assert analytics.balance_between(tx, 0, 10**9) == [row]
        assert [a["data"] for a in analytics.active_alarms(tx)] == [{"loss_percent": "7.00"}]
        analytics.clear_alarm(tx, "balance_loss:trafo")
        assert analytics.active_alarms(tx) == []
    store.close()
