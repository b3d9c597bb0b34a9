"""Migration 0006 (health_records) on a 0005 store, and the health rows' outbox life: loaded
as the outbox's bodies, sent ones pruned to the newest few, unsent ones bounded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from storage import db, health
from storage.migrations import MIGRATIONS_DIR, apply_migrations, latest_version, schema_version
from storage.store import Store


def store_from_0005(tmp_path: Path) -> Store:
    up_to_5 = tmp_path / "v5"
    up_to_5.mkdir()
    for number in range(1, 6):
        shutil.copy(sorted(MIGRATIONS_DIR.glob(f"{number:04d}_*.sql"))[0], up_to_5)
    path = tmp_path / "g.db"
    conn = db.open_connection(path, create=True)
    apply_migrations(conn, path, up_to_5)
    conn.execute("INSERT INTO events (ts_ms, meter_id, kind, severity, data) "
                 "VALUES (1, NULL, 'gateway_started', 'info', '{}')")
    conn.close()
    store = Store.open(path)
    store.register_outbox_kind(health.OUTBOX_KIND, health.OUTBOX_PRIORITY, health.by_ids)
    return store


def add(store: Store, ts_ms: int) -> int:
    with store.transaction() as tx:
        ref = health.add(tx.conn, ts_ms, {"uptime_s": ts_ms, "ok": True, "name": "x"})
        store.outbox_add(tx, health.OUTBOX_KIND, ref, ts_ms)
        health.prune(tx.conn)
    return ref


def test_a_0005_store_gets_health_records_that_go_out_last(tmp_path: Path) -> None:
    store = store_from_0005(tmp_path)
    try:
        assert schema_version(store.db.conn) == latest_version() >= 6
        add(store, 1000)
        store.add_event("late_event", meter_id=None, data={}, ts_ms=2000)
        pending = store.pending_outbox(10)
        assert [r.kind for r in pending] == ["event", "health"]  # priority 6 after events
        body = pending[-1].body
        assert body == health.HealthRecord(1000, {"uptime_s": 1000, "ok": True, "name": "x"})
    finally:
        store.close()


def test_sent_rows_are_pruned_and_unsent_ones_bounded(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    store = store_from_0005(tmp_path)
    monkeypatch.setattr(health, "KEEP_SENT", 2)
    monkeypatch.setattr(health, "MAX_UNSENT", 3)
    try:
        refs = [add(store, ts) for ts in range(1, 6)]
        conn = store.db.conn
        unsent = [r for (r,) in conn.execute(
            "SELECT ref FROM outbox WHERE kind = 'health' ORDER BY ref")]
        assert unsent == refs[-3:]  # the oldest unsent went with their rows
        conn.execute("DELETE FROM outbox WHERE kind = 'health'")  # as if acked
        add(store, 6)
        kept = [r for (r,) in conn.execute("SELECT id FROM health_records ORDER BY id")]
        assert kept[-1] > refs[-1] and len(kept) <= 3
        latest = health.latest(conn)
        assert latest is not None and latest.ts_ms == 6
    finally:
        store.close()
