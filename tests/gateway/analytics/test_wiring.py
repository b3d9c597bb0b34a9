"""Analytics in the readings' transaction: intervals stored with their outbox rows, resumed
after a restart without a gap or a double."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from gateway.analytics.grid import Grid
from gateway.analytics.settings import AnalyticsSettings
from gateway.wiring.analytics import AnalyticsWiring
from storage import analytics
from storage.records import ReadingSet, StoredValue
from storage.store import Store

START_MS = Grid("15min", "UTC").next_after(1_767_225_600_000)
MINUTE = 60_000


def reading(ts_ms: int, kwh: str) -> ReadingSet:
    return ReadingSet("shop-1", ts_ms, (
        StoredValue("import_active_energy", Decimal(kwh), "kWh"),
        StoredValue("active_power", Decimal("1200"), "W"),  # instantaneous: no intervals
    ))


def store_at(path: Path) -> tuple[Store, AnalyticsWiring]:
    store = Store.open(path)
    store.upsert_meter("shop-1")
    return store, AnalyticsWiring(AnalyticsSettings(timezone="UTC"), store)


def test_intervals_commit_with_the_readings_and_resume_after_a_restart(tmp_path: Path) -> None:
    store, wiring = store_at(tmp_path / "g.db")
    values = [Decimal("100") + Decimal(n) / 10 for n in range(13)]  # every 5 min for 1 h
    first = [reading(START_MS + 5 * MINUTE * n, str(v)) for n, v in enumerate(values[:7])]
    store.add_readings(first, in_transaction=wiring.on_readings)
    store.close()

    store, wiring = store_at(tmp_path / "g.db")  # a restart
    rest = [reading(START_MS + 5 * MINUTE * n, str(values[n])) for n in range(7, 13)]
    for r in rest:
        store.add_readings([r], in_transaction=wiring.on_readings)
    with store.transaction() as tx:
        rows = analytics.intervals_between(tx, "shop-1", 0, 2**62)
    assert [(r.start_ms - START_MS) // MINUTE for r in rows] == [0, 15, 30, 45]
    assert {r.quantity for r in rows} == {"import_active_energy"}
    assert {r.quality for r in rows} == {"measured"}
    assert sum(r.value for r in rows if r.value is not None) == values[-1] - values[0]
    kinds = [rec.kind for rec in store.pending_outbox(100)]
    assert kinds.count("interval") == 4
    body = next(rec.body for rec in store.pending_outbox(100) if rec.kind == "interval")
    assert body["m"] == "shop-1" and body["v"] == "0.300000" and body["qual"] == "measured"
    store.close()
