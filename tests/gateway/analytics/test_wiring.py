"""Analytics in the readings' transaction: intervals stored with their outbox rows, resumed
after a restart without a gap or a double."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from gateway.analytics.grid import Grid
from gateway.analytics.settings import AnalyticsSettings
from gateway.wiring.analytics import AnalyticsWiring
from storage import analytics
from storage.records import FLAG_METER_RECORD, ReadingSet, StoredValue
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


def test_history_and_last_week_survive_a_restart(tmp_path: Path) -> None:
    """The spike rule's history and the week-ratio's last week come back from the store."""
    from gateway.analytics.validation import Rules

    rules = Rules(spike_factor=Decimal(3), week_ratio=Decimal(2), min_history=4)
    settings = AnalyticsSettings(timezone="UTC", default_rules=rules,
                                 rules={"shop-1": rules})
    week = 7 * 24 * 60
    kwh = Decimal(100)

    def run(store: Store, wiring: AnalyticsWiring, minutes: range, per_15: Decimal,
            read: range) -> None:
        nonlocal kwh
        for minute in minutes:
            if minute % 5 == 0 and minute in read:
                store.add_readings([reading(START_MS + minute * MINUTE, str(kwh))],
                                   in_transaction=wiring.on_readings)
            kwh += per_15 / 15

    store = Store.open(tmp_path / "g.db")
    store.upsert_meter("shop-1")
    # two hours read, then nothing for a week while the load goes on (interpolated across)
    run(store, AnalyticsWiring(settings, store), range(0, week), Decimal(1), range(0, 120))
    store.close()
    store = Store.open(tmp_path / "g.db")  # a restart: the load is now 3.5 times
    wiring = AnalyticsWiring(settings, store)
    run(store, wiring, range(week, week + 31), Decimal("3.5"), range(week, week + 31))
    with store.transaction() as tx:
        late = analytics.intervals_between(tx, "shop-1", START_MS + week * MINUTE, 2**62)
    # the history (median 1) and last week's interval (1) were read back after the restart:
    # without them neither rule could judge the first intervals after it
    assert [set(i.flags) for i in late] == [{"spike", "week_ratio"}] * 2
    store.close()


def test_a_meter_record_of_a_past_instant_leaves_the_tracks_alone(tmp_path: Path) -> None:
    store, wiring = store_at(tmp_path / "g.db")
    store.add_readings([reading(START_MS, "100")], in_transaction=wiring.on_readings)
    store.add_readings([reading(START_MS + 5 * MINUTE, "100.5")],
                       in_transaction=wiring.on_readings)
    past = ReadingSet("shop-1", START_MS - 60 * MINUTE, (
        StoredValue("import_active_energy", Decimal("90"), "kWh"),), FLAG_METER_RECORD,
        series="load_profile")
    store.add_readings([past], in_transaction=wiring.on_readings)
    for n in (10, 15):
        store.add_readings([reading(START_MS + n * MINUTE, str(100 + Decimal(n) / 10))],
                           in_transaction=wiring.on_readings)
    with store.transaction() as tx:
        rows = analytics.intervals_between(tx, "shop-1", 0, 2**62)
    assert [(r.value, r.flags) for r in rows] == [(Decimal("1.500000"), ())]
    assert [rec.kind for rec in store.pending_outbox(100)].count("reading_flag") == 0
    store.close()


def test_after_a_restart_the_reading_before_is_a_live_one_not_a_record(tmp_path: Path) -> None:
    store, wiring = store_at(tmp_path / "g.db")
    store.add_readings([reading(START_MS, "100")], in_transaction=wiring.on_readings)
    # the newest row the store holds is a record of a past instant, with a higher register
    past = ReadingSet("shop-1", START_MS - 60 * MINUTE, (
        StoredValue("import_active_energy", Decimal("200"), "kWh"),), FLAG_METER_RECORD,
        series="load_profile")
    store.add_readings([past], in_transaction=wiring.on_readings)
    store.close()
    store, wiring = store_at(tmp_path / "g.db")  # a restart: the tracks resume from the store
    store.add_readings([reading(START_MS + 5 * MINUTE, "100.5")],
                       in_transaction=wiring.on_readings)
    # compared with the live 100, not the record's 200: no "went backwards" flag
    assert [rec.kind for rec in store.pending_outbox(100)].count("reading_flag") == 0
    store.close()
