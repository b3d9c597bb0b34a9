"""A head-end database restored from an older copy: the gateway serves what it kept, declares
the rest unavailable once, and the chain goes on (no resend loop)."""

import logging
import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage.records import ReadingSet, StoredValue
from storage.store import Store
from tests.harness.uplink_site import GW, Site
from uplink.localbroker import Mosquitto


def readings(start: int, count: int) -> list[ReadingSet]:
    return [ReadingSet(f"m{i % 7}", 1_700_000_000_000 + 1000 * i, (
        StoredValue("import_active_energy", Decimal(f"{i}.{i % 100:02d}"), "kWh"),
        StoredValue("voltage_l1", Decimal("230.1"), "V"))) for i in range(start, start + count)]


def backup(db: Path, to: Path) -> None:
    """A consistent copy of a live WAL database (what an operator's backup holds)."""
    src, dst = sqlite3.connect(db), sqlite3.connect(to)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def restore(copy: Path, db: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(copy, db)


async def deliver(site: Site, store: Store, start: int, count: int) -> None:
    store.add_readings(readings(start, count))
    site.uplink.wake()
    await site.drained()


def events(caplog: pytest.LogCaptureFixture, name: str) -> int:
    return sum(1 for r in caplog.records if r.getMessage() == name)


@pytest.mark.parametrize("retain_bytes", [0, 8 * 1024 * 1024], ids=["dropped", "kept"])
async def test_restored_headend_recovers_without_a_resend_loop(
        broker: Mosquitto, store: Store, gw_key: Ed25519PrivateKey,
        server_key: Ed25519PrivateKey, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        retain_bytes: int) -> None:
    caplog.set_level(logging.INFO)
    db, old = tmp_path / "he.db", tmp_path / "he-backup.db"
    opts = {"max_batch_bytes": 1024, "retain_acked_bytes": retain_bytes}
    site = await Site(broker.url, store, gw_key, server_key, db, **opts).start()
    try:
        await deliver(site, store, 0, 60)
        backup(db, old)
        held_then, ids_then = site.hstore.contiguous(GW), site.hstore.record_ids(GW)
        await deliver(site, store, 60, 60)  # acked by the head-end, then lost with its disk
        acked = site.uplink.state()["last_ack"]
        ids_lost = site.hstore.record_ids(GW)[len(ids_then):]
    finally:
        await site.stop()
    assert acked > held_then + 1
    restore(old, db)
    caplog.clear()

    site = await Site(broker.url, store, gw_key, server_key, db, **opts).start()
    try:
        for round_ in range(3):  # the chain goes on with new batches
            await deliver(site, store, 120 + 20 * round_, 20)
        state = site.uplink.state()
        assert site.hstore.contiguous(GW) == state["head"] == state["last_ack"] > acked
        anomalies = [a for a in site.hstore.anomalies(GW) if a[2] in ("known_gap", "fork")]
        ids_now = site.hstore.record_ids(GW)
        new_batches = state["head"] - acked
    finally:
        await site.stop()
    ids_new = ids_now[len(ids_then) + (0 if retain_bytes == 0 else len(ids_lost)):]
    assert len(ids_new) == 60
    if retain_bytes == 0:
        assert anomalies == [(GW, held_then + 1, "known_gap",
                              f"seq {held_then + 1}..{acked} unavailable from the gateway")]
        assert ids_now == ids_then + ids_new  # the lost ones are a known gap, nothing else
        assert events(caplog, "resend_unavailable") == 1
        assert events(caplog, "chain_known_gap") == 1
    else:
        assert anomalies == []
        assert ids_now == ids_then + ids_lost + ids_new  # served again from the retention
        assert events(caplog, "resend_replayed") == 1
    # one ack per batch (new or served again) or unavailable record at most: no request loop
    assert events(caplog, "resend_requested") <= new_batches + (acked - held_then) + 1
