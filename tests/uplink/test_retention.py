"""Retention of acknowledged batches, the resend plan and guard, and the unavailable record."""

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage import batches
from storage.store import Store
from tests.uplink.test_headend_chain import ENROLLED, KEY, chain
from uplink.codec import Unavailable, decode_unavailable, encode_unavailable
from uplink.cose import sign1
from uplink.errors import BadMessage, BadSignature, UplinkError
from uplink.headend.store import HeadendStore
from uplink.headend.verify import verify_batch, verify_unavailable
from uplink.resend import MS_PER_DAY, ResendGuard, plan_resend
from uplink.settings import settings_from_section

DAY0_MS = 1_700_000_000_000


def add_acked(store: Store, sizes: list[int], acked_ms: int) -> None:
    with store.transaction() as tx:
        for size in sizes:
            seq = batches.chain_head(tx)[0] + 1
            data = bytes([seq % 256]) * size
            batches.add_batch(tx, seq, data, hashlib.sha256(data).digest(), 1, acked_ms)
        batches.mark_acked_through(tx, batches.chain_head(tx)[0], acked_ms)


def kept(store: Store) -> list[int]:
    with store.transaction() as tx:
        return [b.seq for b in batches.acked_batches(tx, 1, 10**9) if b.data]


def test_acked_batches_are_kept_within_the_byte_budget(store: Store) -> None:
    add_acked(store, [100] * 5, DAY0_MS)
    with store.transaction() as tx:
        assert batches.prune_acked(tx, 250, DAY0_MS) == 4  # the newest two fit in 250 bytes
    assert kept(store) == [4, 5]
    add_acked(store, [100], DAY0_MS)
    with store.transaction() as tx:
        assert batches.prune_acked(tx, 250, DAY0_MS) == 5
    assert kept(store) == [5, 6]
    with store.transaction() as tx:
        assert batches.prune_acked(tx, 0, DAY0_MS) == 7  # nothing kept
        assert batches.unacked_batches(tx) == []
    assert kept(store) == []


def test_acked_batches_older_than_the_days_are_dropped(store: Store) -> None:
    add_acked(store, [10, 10], DAY0_MS)
    add_acked(store, [10], DAY0_MS + 3 * MS_PER_DAY)
    with store.transaction() as tx:
        assert batches.prune_acked(tx, 10**6, DAY0_MS + 1) == 3
    assert kept(store) == [3]


def test_plan_resend_declares_the_dropped_range_and_serves_the_kept(store: Store) -> None:
    add_acked(store, [100] * 5, DAY0_MS)
    with store.transaction() as tx:
        batches.prune_acked(tx, 250, DAY0_MS)
        sha3 = batches.batch_sha256(tx, 3)
    assert sha3 is not None
    plan = plan_resend(store, "g", 2)
    assert plan.gone == Unavailable("g", 2, 3, sha3)
    assert [b.seq for b in plan.batches] == [4, 5]
    assert plan_resend(store, "g", 5).gone is None


def test_resend_guard_serves_a_range_once_per_interval() -> None:
    guard = ResendGuard(30.0)
    assert guard.allow(3, 10, now=100.0)
    assert not guard.allow(3, 10, now=101.0)  # repeated with the next ack
    assert not guard.allow(7, 10, now=102.0)  # a replayed batch's ack asks from inside it
    assert guard.allow(11, 12, now=103.0)
    assert guard.allow(3, 12, now=131.0)  # the answer was lost: asked again much later


def test_retention_settings_are_validated() -> None:
    s = settings_from_section({"retain_acked_bytes": 0, "retain_acked_days": 30}, "gw")
    assert (s.retain_acked_bytes, s.retain_acked_days) == (0, 30)
    with pytest.raises(UplinkError, match="retain_acked_bytes"):
        settings_from_section({"retain_acked_bytes": -1}, "gw")
    with pytest.raises(UplinkError, match="retain_acked_days"):
        settings_from_section({"retain_acked_days": 10_000}, "gw")
    with pytest.raises(UplinkError, match="retain_acked_days: expected"):
        settings_from_section({"retain_acked_days": "7"}, "gw")


def test_unavailable_record_codec_and_verification() -> None:
    gone = Unavailable("g", 2, 5, bytes(range(32)))
    signed = sign1(encode_unavailable(gone), KEY, b"g")
    assert decode_unavailable(encode_unavailable(gone)) == gone
    assert verify_unavailable(signed, ENROLLED) == gone
    with pytest.raises(BadMessage, match="bad range"):
        decode_unavailable(encode_unavailable(Unavailable("g", 5, 2, bytes(32))))
    with pytest.raises(BadSignature):
        verify_unavailable(sign1(encode_unavailable(gone), Ed25519PrivateKey.generate(), b"g"),
                           ENROLLED)
    with pytest.raises(BadMessage, match="claims gateway"):
        verify_unavailable(sign1(encode_unavailable(Unavailable("h", 1, 1, bytes(32))), KEY,
                                 b"g"), ENROLLED)


def test_headend_records_a_known_gap_once_and_chains_across_it(tmp_path: Path) -> None:
    store = HeadendStore(tmp_path / "h.db")
    good = chain(6)
    for raw in good[:2]:
        store.ingest(verify_batch(raw, ENROLLED))
    assert store.ingest(verify_batch(good[4], ENROLLED)).resend == 3
    wrong = Unavailable("g", 3, 4, bytes(32))  # batch 5 does not chain to this hash
    assert store.record_unavailable(wrong).status == "fork"
    gone = Unavailable("g", 3, 4, hashlib.sha256(good[3]).digest())
    result = store.record_unavailable(gone)
    assert (result.status, result.ack, result.resend) == ("known_gap", 5, None)
    assert store.record_unavailable(gone).status == "held"  # said once
    assert store.ingest(verify_batch(good[5], ENROLLED)).ack == 6
    kinds = [a[2] for a in store.anomalies("g")]
    assert kinds == ["gap", "fork", "known_gap"]
    store.close()


def test_batch_after_a_known_gap_must_chain_to_its_hash(tmp_path: Path) -> None:
    store = HeadendStore(tmp_path / "h.db")
    good = chain(4)
    store.ingest(verify_batch(good[0], ENROLLED))
    store.record_unavailable(Unavailable("g", 2, 3, hashlib.sha256(good[2]).digest()))
    assert store.contiguous("g") == 3
    other = chain(1, start_id=70, prev=bytes(range(32)), first_seq=4)[0]
    assert store.ingest(verify_batch(other, ENROLLED)).status == "fork"
    assert store.ingest(verify_batch(good[3], ENROLLED)).ack == 4
    store.close()


def test_a_store_from_before_retention_keeps_from_its_next_ack(store: Store) -> None:
    add_acked(store, [100] * 2, DAY0_MS)
    with store.transaction() as tx:  # what the earlier code left: acked bytes emptied, no state
        tx.execute("UPDATE uplink_batches SET bytes = x''")
        tx.execute("DELETE FROM uplink_state WHERE key IN ('retained_from', 'retained_bytes')")
    add_acked(store, [100], DAY0_MS)
    with store.transaction() as tx:
        assert batches.prune_acked(tx, 10**6, DAY0_MS) == 3
    assert kept(store) == [3]
    assert [b.seq for b in plan_resend(store, "g", 1).batches] == [3]
