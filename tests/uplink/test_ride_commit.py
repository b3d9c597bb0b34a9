"""The uplink's part of the readings' group commit: the next batch and the due ack ride on it,
and a failure of the uplink's part never costs the readings (a savepoint)."""

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage import batches
from storage.errors import StorageError
from storage.records import ReadingSet, StoredValue
from storage.store import Store
from uplink.commands import CommandRegistry
from uplink.service import Uplink
from uplink.settings import UplinkSettings


def sets(start: int, count: int) -> list[ReadingSet]:
    return [ReadingSet(f"m{i % 3}", 1_700_000_000_000 + 1000 * i, (
        StoredValue("import_active_energy", Decimal(i), "kWh"),))
        for i in range(start, start + count)]


def connected_uplink(store: Store, gw_key: Ed25519PrivateKey,
                     server_key: Ed25519PrivateKey) -> Uplink:
    uplink = Uplink(store, UplinkSettings(gateway_id="gw", broker_url="mqtt://127.0.0.1:1"),
                    gw_key, server_key.public_key(), CommandRegistry())
    uplink._connected = True  # as after on_connected: the hook may build
    return uplink


def commit(store: Store, uplink: Uplink, readings: list[ReadingSet]) -> list[int]:
    ids = store.add_readings(readings, in_transaction=uplink.in_readings_commit)
    uplink.after_readings_commit(ids)
    return ids


def test_the_batch_is_committed_with_the_readings(
        store: Store, gw_key: Ed25519PrivateKey, server_key: Ed25519PrivateKey) -> None:
    uplink = connected_uplink(store, gw_key, server_key)
    commit(store, uplink, sets(0, 5))
    with store.transaction() as tx:
        assert [b.n_records for b in batches.unacked_batches(tx, 1)] == [5]
        assert batches.unacked_batches(tx, 1)[0].sent_ms is not None
    assert store.pending_outbox(100) == []
    assert uplink.state()["head"] == 1


def test_a_failed_build_leaves_the_readings_stored_and_their_records_pending(
        store: Store, gw_key: Ed25519PrivateKey, server_key: Ed25519PrivateKey,
        monkeypatch: pytest.MonkeyPatch) -> None:
    uplink = connected_uplink(store, gw_key, server_key)
    original = store.assign_to_batch

    def failing(tx: Any, ids: Any, seq: int) -> None:
        original(tx, ids, seq)  # the batch row and its assignment are written ...
        raise StorageError("disk refused the batch")  # ... and then the build fails
    monkeypatch.setattr(store, "assign_to_batch", failing)
    ids = commit(store, uplink, sets(0, 4))
    assert len(store.readings_between("m0", 0, 2**62)) == 2 and len(ids) == 4
    with store.transaction() as tx:
        assert batches.chain_head(tx)[0] == 0  # rolled back to the savepoint
    assert [r.ref for r in store.pending_outbox(100)] == ids
    assert uplink.state()["head"] == 0 and "disk refused" in str(uplink.last_error)


def test_a_due_ack_rides_on_the_next_readings_commit(
        store: Store, gw_key: Ed25519PrivateKey, server_key: Ed25519PrivateKey,
        tmp_path: Path) -> None:
    uplink = connected_uplink(store, gw_key, server_key)
    commit(store, uplink, sets(0, 3))
    uplink._acks.note(1)  # as _handle_ack does for a valid ack of batch 1
    assert store.outbox_backlog() == 3  # not written yet
    commit(store, uplink, sets(3, 2))
    with store.transaction() as tx:
        assert batches.acked_seq(tx) == 1
    assert store.outbox_backlog() == 2  # batch 1's rows deleted, batch 2's in flight
    assert uplink._acks.due is None
