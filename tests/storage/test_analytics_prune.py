"""Old analytics rows go once delivered; undelivered and recent ones stay."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from storage import analytics
from storage.store import Store

DAY = 86_400_000


def test_prune_deletes_only_old_delivered_rows(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "g.db")
    store.register_outbox_kind(analytics.INTERVAL_KIND, 3, analytics.interval_bodies)
    with store.transaction() as tx:
        ids = []
        for day in (1, 2, 30):
            ids.append(analytics.insert_interval(tx, analytics.IntervalRow(
                "m1", "volume", "daily", (day - 1) * DAY, day * DAY, Decimal(1), "measured")))
        store.outbox_add(tx, analytics.INTERVAL_KIND, ids[1], 2 * DAY)  # day 2 not delivered
        snap = analytics.insert_snapshot(tx, analytics.SnapshotRow(
            "m1", "volume", "daily", DAY, Decimal(5), "measured"))
        assert snap is not None
        assert analytics.prune(tx, 10 * DAY, 100, intervals_only=True) == 1  # day 1's interval
        assert analytics.prune(tx, 10 * DAY, 100) == 1  # and the snapshot
        left = analytics.intervals_between(tx, "m1", 0, 100 * DAY)
        assert [r.end_ms // DAY for r in left] == [2, 30]
        assert analytics.snapshots_of(tx, "m1", 10) == []
        assert analytics.prune(tx, 10 * DAY, 100) == 0
    store.close()
