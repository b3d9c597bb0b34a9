"""Size bound: delivered readings go first, then undelivered (with an event); never events."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path

import pytest

from storage import batches, eviction
from storage.errors import StoreFull
from storage.records import ReadingSet, StoredValue
from storage.store import Store

ROOM = 512 * 1024  # bytes of the bound above an empty store (other migrations add tables)
SETS_PER_COMMIT = 20


def _set(meter: int, ts_ms: int) -> ReadingSet:
    values = tuple(
        StoredValue(f"quantity_{i}", Decimal(ts_ms * 1000 + i).scaleb(-3), "kWh")
        for i in range(20)
    )
    return ReadingSet(f"m{meter}", ts_ms, values)


def _write(store: Store, commits: int, first_ts: int) -> int:
    for commit in range(commits):
        ts = first_ts + commit
        store.add_readings([_set(meter, ts) for meter in range(SETS_PER_COMMIT)])
    return commits * SETS_PER_COMMIT


def _deliver_all(store: Store, seq: int) -> None:
    while records := store.pending_outbox(500):
        with store.transaction() as tx:
            store.assign_to_batch(tx, [r.id for r in records], seq)
            store.mark_delivered_through(tx, seq)
        seq += 1


def _reading_refs(store: Store) -> set[int]:
    rows = store.db.execute("SELECT ref FROM outbox WHERE kind = 'reading'").fetchall()
    return {ref for (ref,) in rows}


def _stored_ids(store: Store) -> set[int]:
    return {rid for (rid,) in store.db.execute("SELECT id FROM readings").fetchall()}


@pytest.fixture
def bounded(tmp_path: Path) -> Store:
    empty = Store.open(tmp_path / "g.db")
    bound = eviction.used_bytes(empty.db.conn) + ROOM
    empty.close()
    return Store.open(tmp_path / "g.db", max_bytes=bound)


def _bound(store: Store) -> int:
    assert store.max_bytes is not None
    return store.max_bytes


def test_delivered_readings_are_evicted_first_without_event(bounded: Store) -> None:
    _write(bounded, 100, 0)
    _deliver_all(bounded, 1)
    pending_before = _write(bounded, 50, 1000)
    for round_ts in range(2000, 8000, 1000):  # keep writing: eviction must take delivered only
        _write(bounded, 5, round_ts)
        pending_before += 5 * SETS_PER_COMMIT
        undelivered = _reading_refs(bounded)
        assert undelivered <= _stored_ids(bounded)  # every undelivered reading still stored
        assert len(undelivered) == pending_before
    assert not [e for e in bounded.recent_events(50) if e.kind == "readings_evicted"]
    assert bounded.usage().readings < 100 * SETS_PER_COMMIT + pending_before  # some were evicted
    assert eviction.used_bytes(bounded.db.conn) <= _bound(bounded) + 64 * 1024


def test_undelivered_eviction_is_reported_and_counted(bounded: Store) -> None:
    written = _write(bounded, 400, 0)
    evicted = [e for e in bounded.recent_events(100) if e.kind == "readings_evicted"]
    assert evicted, "the bound must have been hit"
    counted = sum(e.data["count"] for e in evicted)
    assert counted + len(_reading_refs(bounded)) == written  # nothing dropped silently
    assert all(e.data["from_ms"] <= e.data["to_ms"] for e in evicted)
    event_refs = {r.ref for r in bounded.pending_outbox(10_000) if r.kind == "event"}
    assert {e.id for e in evicted} <= event_refs  # the eviction events go upstream
    newest = bounded.last_readings("m3", 3)
    assert [r.ts_ms for r in newest] == [399, 398, 397]


def test_freed_pages_are_reused(bounded: Store) -> None:
    _write(bounded, 200, 0)
    file_after_fill = eviction.file_bytes(bounded.db.conn)
    _write(bounded, 600, 1000)
    assert eviction.file_bytes(bounded.db.conn) <= max(file_after_fill, _bound(bounded)) * 1.1


def test_full_of_events_refuses_readings_and_reports_once(bounded: Store) -> None:
    _write(bounded, 5, 0)
    blob = "x" * 2000
    event_count = 0
    # Fill with events beyond what evicting every reading could free.
    while eviction.used_bytes(bounded.db.conn) <= _bound(bounded) * 1.2:
        bounded.add_event("audit", meter_id=None, data={"blob": blob}, ts_ms=event_count)
        event_count += 1
    for attempt in range(3):
        with pytest.raises(StoreFull, match=r"g\.db"):
            bounded.add_readings([_set(0, 10_000 + attempt)])
    kinds = [e.kind for e in bounded.recent_events(event_count + 10)]
    assert kinds.count("store_full") == 1
    assert kinds.count("audit") == event_count  # events are never evicted
    assert bounded.usage().readings == 0


def test_lowered_bound_shrinks_the_file_in_small_steps(tmp_path: Path) -> None:
    unbounded = Store.open(tmp_path / "g.db")
    _write(unbounded, 200, 0)
    _deliver_all(unbounded, 1)
    big = eviction.file_bytes(unbounded.db.conn)
    unbounded.close()
    store = Store.open(tmp_path / "g.db", max_bytes=big // 2)
    _write(store, 1, 1000)  # evicts delivered readings: pages go to the free list
    sizes = []
    for ts in range(1001, 1030):
        _write(store, 1, ts)
        sizes.append(eviction.file_bytes(store.db.conn))
    assert sizes[-1] < sizes[0] < big
    shrink_steps = [a - b for a, b in itertools.pairwise(sizes) if a > b]
    assert max(shrink_steps) <= eviction.VACUUM_STEP_PAGES * store.db.conn.execute(
        "PRAGMA page_size").fetchone()[0]
    store.close()


def test_retained_batch_bytes_go_before_undelivered_readings(bounded: Store) -> None:
    # Acked batches are kept only so a restored head-end can ask for them again: they are worth
    # less than readings the head-end has never seen.
    with bounded.transaction() as tx:
        for seq in range(1, 9):
            batches.add_batch(tx, seq, bytes([seq]) * 40_000, bytes(32), 1, seq)
        batches.mark_acked_through(tx, 8, 10)
    written = _write(bounded, 60, 0)
    assert not [e for e in bounded.recent_events(50) if e.kind == "readings_evicted"]
    assert len(_reading_refs(bounded)) == written  # every undelivered reading kept
    with bounded.transaction() as tx:
        assert batches.retained_from(tx) > 1  # the oldest retained bytes were dropped
    assert eviction.used_bytes(bounded.db.conn) <= _bound(bounded) + 64 * 1024
