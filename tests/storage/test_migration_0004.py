"""Migration 0004 (uplink_state WITHOUT ROWID, no unacked index) keeps a 0003 store's state."""

from __future__ import annotations

import shutil
from pathlib import Path

from storage import batches, db
from storage.migrations import MIGRATIONS_DIR, apply_migrations, latest_version, schema_version
from storage.store import Store


def test_a_0003_store_keeps_its_chain_head_acks_and_unacked_batches(tmp_path: Path) -> None:
    up_to_3 = tmp_path / "v3"
    up_to_3.mkdir()
    for number in range(1, 4):
        shutil.copy(sorted(MIGRATIONS_DIR.glob(f"{number:04d}_*.sql"))[0], up_to_3)
    path = tmp_path / "g.db"
    conn = db.open_connection(path, create=True)
    apply_migrations(conn, path, up_to_3)
    for seq in (1, 2, 3):
        conn.execute("INSERT INTO uplink_batches (seq, bytes, sha256, n_records, created_ms, "
                     "acked_ms) VALUES (?, ?, ?, 1, 5, ?)",
                     (seq, b"b%d" % seq, bytes([seq]) * 32, 7 if seq == 1 else None))
    conn.executemany("INSERT INTO uplink_state (key, value) VALUES (?, ?)",
                     [("last_seq", 3), ("last_sha256", bytes([3]) * 32), ("acked_seq", 1)])
    conn.close()

    store = Store.open(path)
    assert schema_version(store.db.conn) == latest_version() >= 4
    with store.transaction() as tx:
        assert batches.chain_head(tx) == (3, bytes([3]) * 32)
        assert batches.acked_seq(tx) == 1
        assert [b.seq for b in batches.unacked_batches(tx, 2)] == [2, 3]
        batches.mark_acked_through(tx, 2, 9)
        assert [b.seq for b in batches.unacked_batches(tx, 3)] == [3]
    sql = store.db.conn.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'uplink_state'").fetchone()[0]
    assert "WITHOUT ROWID" in sql
    assert store.db.conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE name = 'uplink_batches_unacked'"
    ).fetchone()[0] == 0
    store.close()
