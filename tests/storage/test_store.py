"""Store API: readings, events, outbox order, batches, transactions."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from storage.errors import InvalidRecord, StorageError, UnknownMeter
from storage.records import FLAG_CLOCK_UNSYNCED, EventRecord, ReadingSet, StoredValue
from storage.store import Store
from tests.storage.conftest import reading


def test_readings_round_trip_newest_first(store: Store) -> None:
    store.upsert_meter("shop-12", protocol="modbus", bus="rs485-1", address="12", seen_ms=5)
    ids = store.add_readings([reading("shop-12", 1000), reading("shop-12", 2000, "1235.0")])
    assert ids[0] < ids[1]
    got = store.last_readings("shop-12", 5)
    assert [r.ts_ms for r in got] == [2000, 1000]
    assert got[0].id == ids[1]
    assert got[0].values == reading("shop-12", 2000, "1235.0").values
    assert str(got[0].values[0].value) == "1235.0"  # exponent kept: not "1235"


def test_readings_between_is_half_open(store: Store) -> None:
    store.add_readings([reading("m1", ts) for ts in (100, 200, 300, 400)])
    assert [r.ts_ms for r in store.readings_between("m1", 200, 400)] == [200, 300]


def test_unknown_meter_is_auto_registered_on_write_and_refused_on_read(store: Store) -> None:
    store.add_readings([reading("new-meter", 10, flags=FLAG_CLOCK_UNSYNCED)])
    assert store.last_readings("new-meter", 1)[0].flags == FLAG_CLOCK_UNSYNCED
    row = store.db.execute("SELECT first_seen_ms, last_seen_ms FROM meters").fetchone()
    assert row == (10, 10)
    with pytest.raises(UnknownMeter, match="nobody"):
        store.last_readings("nobody", 1)


def test_upsert_meter_keeps_fields_and_widens_seen(store: Store) -> None:
    mid = store.upsert_meter("m", protocol="iec62056", seen_ms=50)
    assert store.upsert_meter("m", address="7", seen_ms=20) == mid
    assert store.upsert_meter("m", seen_ms=90) == mid
    row = store.db.execute(
        "SELECT protocol, address, first_seen_ms, last_seen_ms FROM meters WHERE id = 'm'"
    ).fetchone()
    assert row == ("iec62056", "7", 50, 90)


@pytest.mark.parametrize(
    "bad",
    [
        ReadingSet("", 1, ()),
        ReadingSet("m", 1.5, ()),  # type: ignore[arg-type]
        ReadingSet("m", 1, (), flags=256),
        ReadingSet("m", 1, (StoredValue("q", 1.5, "V"),)),  # type: ignore[arg-type]
        ReadingSet("m", 1, (StoredValue("", Decimal(1), "V"),)),
    ],
)
def test_bad_reading_is_refused_and_nothing_written(store: Store, bad: ReadingSet) -> None:
    with pytest.raises(InvalidRecord, match="reading of meter"):
        store.add_readings([reading("m", 1), bad])
    assert store.outbox_backlog() == 0


def test_events_round_trip_with_exact_decimal(store: Store) -> None:
    first = store.add_event("relay_open", meter_id="m", data={"credit": Decimal("0.10")}, ts_ms=7)
    store.add_event("boot", meter_id=None, data=None, ts_ms=8, severity="warning")
    events = store.recent_events(10)
    assert [e.kind for e in events] == ["boot", "relay_open"]
    assert events[1] == EventRecord("relay_open", 7, "m", "info", {"credit": "0.10"}, first)
    assert [e.kind for e in store.recent_events(10, meter_id="m")] == ["relay_open"]


def test_bad_events_are_refused(store: Store) -> None:
    with pytest.raises(InvalidRecord, match="severity"):
        store.add_event("x", meter_id=None, data={}, ts_ms=1, severity="loud")
    with pytest.raises(InvalidRecord, match=r"'x'.*serialisable"):
        store.add_event("x", meter_id=None, data={"f": object()}, ts_ms=1)
    assert store.recent_events(5) == []


def test_pending_outbox_orders_by_priority_then_id(store: Store) -> None:
    store.register_outbox_kind("cmd_result", 0, lambda conn, refs: {r: f"cmd{r}" for r in refs})
    [rid] = store.add_readings([reading("m", 1)])
    eid = store.add_event("boot", meter_id=None, data={}, ts_ms=2)
    with store.transaction() as tx:
        cmd_record = store.outbox_add(tx, "cmd_result", 42, 3)
    records = store.pending_outbox(10)
    assert [r.kind for r in records] == ["cmd_result", "event", "reading"]
    assert records[0].id == cmd_record and records[0].body == "cmd42"
    assert records[1].ref == eid and records[1].body.kind == "boot"
    assert records[2].ref == rid and records[2].body.meter_id == "m"
    assert [r.id for r in records] != sorted(r.id for r in records)  # priority wins over id


def test_batches_deliver_and_unbatch(store: Store) -> None:
    store.add_readings([reading("m", ts) for ts in range(6)])
    ids = [r.id for r in store.pending_outbox(10)]
    with store.transaction() as tx:
        store.assign_to_batch(tx, ids[:2], seq=1)
        store.assign_to_batch(tx, ids[2:4], seq=2)
        store.assign_to_batch(tx, ids[4:], seq=3)
    assert store.pending_outbox(10) == []
    with store.transaction() as tx:
        assert store.mark_delivered_through(tx, 1) == 2
        assert store.unbatch_from(tx, 3) == 2
    assert [r.id for r in store.pending_outbox(10)] == ids[4:]
    assert store.outbox_backlog() == 4
    with store.transaction() as tx, pytest.raises(StorageError, match="batch 9"):
        store.assign_to_batch(tx, [ids[0], ids[4]], seq=9)  # ids[0] already delivered


def test_record_ids_are_never_reused_after_delivery(store: Store) -> None:
    store.add_readings([reading("m", 1)])
    first = store.pending_outbox(1)[0].id
    with store.transaction() as tx:
        store.assign_to_batch(tx, [first], 1)
        store.mark_delivered_through(tx, 1)
    store.add_readings([reading("m", 2)])
    assert store.pending_outbox(1)[0].id > first


def test_transaction_rolls_back_on_error_and_refuses_nesting(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        store.add_event("x", meter_id=None, data={}, ts_ms=1, tx=tx)
        raise RuntimeError("boom")
    assert store.recent_events(1) == []
    with store.transaction(), pytest.raises(StorageError, match="nested"), store.transaction():
        pass
    store.add_event("after", meter_id=None, data={}, ts_ms=1)
    assert store.outbox_backlog() == 1


def test_rolled_back_quantity_is_not_cached(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        store.upsert_meter("ghost", tx=tx)
        raise RuntimeError("boom")
    store.add_readings([reading("ghost", 1)])  # must re-create the meter, not reuse a lost mid
    assert store.last_readings("ghost", 1)[0].ts_ms == 1


def test_unregistered_kind_is_refused(store: Store) -> None:
    with store.transaction() as tx, pytest.raises(StorageError, match="'ledger'"):
        store.outbox_add(tx, "ledger", 1, 1)
    with pytest.raises(InvalidRecord, match="contract"):
        store.register_outbox_kind("ledger", 5, lambda conn, refs: {})


def test_usage_reports_counts(store: Store) -> None:
    store.add_readings([reading("m", 5), reading("m", 3)])
    usage = store.usage()
    assert (usage.readings, usage.oldest_reading_ms, usage.undelivered) == (2, 3, 2)
    assert usage.bytes_used > 0 and usage.max_bytes is None


def test_every_reading_has_its_outbox_row(store: Store, tmp_path: Path) -> None:
    store.add_readings([reading(f"m{i}", i) for i in range(50)])
    store.close()
    conn = sqlite3.connect(tmp_path / "gateway.db")
    orphans = conn.execute(
        "SELECT count(*) FROM readings r LEFT JOIN outbox o ON o.kind = 'reading' "
        "AND o.ref = r.id WHERE o.id IS NULL"
    ).fetchone()[0]
    assert orphans == 0
    conn.close()


def test_newest_means_most_recently_stored_even_if_the_clock_went_back(store: Store) -> None:
    store.add_readings([reading("m", 5000), reading("other", 1)])
    store.add_readings([reading("m", 10, flags=FLAG_CLOCK_UNSYNCED), reading("other", 2)])
    assert [r.ts_ms for r in store.last_readings("m", 10)] == [10, 5000]
    assert [r.ts_ms for r in store.last_readings("other", 1)] == [2]
    assert store.last_readings("m", 0) == []


def test_sqlite_error_inside_a_transaction_becomes_storage_error(store: Store) -> None:
    with pytest.raises(StorageError, match=r"gateway\.db.*no such table"), \
            store.transaction() as tx:
        tx.conn.execute("INSERT INTO nowhere VALUES (1)")
    store.add_event("still_fine", meter_id=None, data={}, ts_ms=1)


def test_a_call_from_another_thread_than_the_owner_fails(store: Store) -> None:
    import threading

    failures: list[BaseException] = []

    def call(action: Any) -> None:
        try:
            action()
        except BaseException as exc:
            failures.append(exc)

    actions = [
        lambda: store.add_event("tick", meter_id=None, data={}, ts_ms=1),
        store.outbox_backlog,
        lambda: store.last_readings("m", 1),
        lambda: store.db.conn.execute("SELECT 1"),
        store.transaction().__enter__,
        store.close,
    ]
    for action in actions:
        worker = threading.Thread(target=call, args=(action,), name="not-the-owner")
        worker.start()
        worker.join()
    assert len(failures) == len(actions)
    assert all(isinstance(f, AssertionError) and "not-the-owner" in str(f) for f in failures)
    assert store.owner is threading.current_thread()
    store.add_event("still_fine", meter_id=None, data={}, ts_ms=2)  # the owner goes on
    assert store.outbox_backlog() == 1


def test_in_transaction_hook_commits_or_rolls_back_with_the_readings(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "hook.db")
    seen: list[int | None] = []

    def charge(tx: Any, stored: list[ReadingSet]) -> None:
        seen.extend(r.id for r in stored)
        tx.execute("CREATE TABLE IF NOT EXISTS side (rid INTEGER)")
        for r in stored:
            tx.execute("INSERT INTO side VALUES (?)", (r.id,))

    reading = ReadingSet("m1", 1_000, (StoredValue("volume", Decimal("1.5"), "m3"),))
    ids = store.add_readings([reading, reading], in_transaction=charge)
    assert seen == ids

    def failing(tx: Any, stored: list[ReadingSet]) -> None:
        raise RuntimeError("charge failed")

    with pytest.raises(RuntimeError):
        store.add_readings([reading], in_transaction=failing)
    assert len(store.last_readings("m1", 10)) == 2  # the failed batch left nothing behind
    with store.transaction() as tx:
        assert tx.execute("SELECT count(*) FROM side").fetchone()[0] == 2
    store.close()
