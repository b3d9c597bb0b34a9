"""Head-end chain checks: any order and duplicates converge; forks and bad batches refused."""

import hashlib
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uplink.codec import ZERO_HASH, WireRecord, encode_batch_payload, record_item
from uplink.cose import sign1
from uplink.errors import BadMessage, BadSignature
from uplink.headend.store import HeadendStore
from uplink.headend.verify import verify_batch

KEY = Ed25519PrivateKey.generate()
ENROLLED = {"g": KEY.public_key()}


def chain(n: int, *, start_id: int = 1, prev: bytes = ZERO_HASH, first_seq: int = 1,
          key: Ed25519PrivateKey = KEY, gw: str = "g") -> list[bytes]:
    out = []
    for i in range(n):
        seq = first_seq + i
        rec = WireRecord("event", start_id + i, 1_000_000 + i, {"e": "x", "s": "info", "d": {}})
        payload = encode_batch_payload(gw, seq, prev, 1000, [record_item(rec, 1_000_000)],
                                       compress=bool(i % 2))
        raw = sign1(payload, key, gw.encode())
        prev = hashlib.sha256(raw).digest()
        out.append(raw)
    return out


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_order_with_duplicates_converges(tmp_path: Path, data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 12))
    batches = chain(n)
    order = data.draw(st.permutations(list(range(n))))
    dupes = data.draw(st.lists(st.integers(0, n - 1), max_size=5))
    store = HeadendStore(tmp_path / f"h{uuid.uuid4().hex}.db")  # one fresh file per example
    try:
        for i in [*order, *dupes]:
            result = store.ingest(verify_batch(batches[i], ENROLLED))
            assert result.status in ("stored", "duplicate")
        assert store.contiguous("g") == n
        assert store.record_ids("g") == list(range(1, n + 1))
        assert {a[2] for a in store.anomalies("g")} <= {"gap"}
    finally:
        store.close()


def test_gap_asks_resend_and_fork_is_reported(tmp_path: Path) -> None:
    store = HeadendStore(tmp_path / "h.db")
    good = chain(4)
    assert store.ingest(verify_batch(good[0], ENROLLED)).ack == 1
    gap = store.ingest(verify_batch(good[2], ENROLLED))
    assert (gap.status, gap.ack, gap.resend) == ("stored", 1, 2)
    # a different batch 2 (same seq, other content) is a fork, refused
    fork = chain(1, start_id=99, prev=hashlib.sha256(good[0]).digest(), first_seq=2)[0]
    assert store.ingest(verify_batch(fork, ENROLLED)).status == "fork"
    # a batch 4 whose prev is not batch 3's hash is a fork too
    bad_prev = chain(1, start_id=50, prev=bytes(range(32)), first_seq=4)[0]
    store.ingest(verify_batch(good[1], ENROLLED))
    assert store.ingest(verify_batch(bad_prev, ENROLLED)).status == "fork"
    assert store.ingest(verify_batch(good[3], ENROLLED)).ack == 4
    assert [a[2] for a in store.anomalies("g")] == ["gap", "fork", "fork"]
    assert store.record_ids("g") == [1, 2, 3, 4]
    store.close()


def test_unenrolled_forged_and_impersonating_batches_refused() -> None:
    with pytest.raises(BadSignature, match="not enrolled"):
        verify_batch(chain(1, gw="stranger")[0], ENROLLED)
    with pytest.raises(BadSignature):
        verify_batch(chain(1, key=Ed25519PrivateKey.generate())[0], ENROLLED)
    # signed by g's key under kid g, but the payload claims another gateway
    payload = encode_batch_payload("h", 1, ZERO_HASH, 0, [], compress=False)
    with pytest.raises(BadMessage, match="claims gateway"):
        verify_batch(sign1(payload, KEY, b"g"), ENROLLED)
    with pytest.raises(BadMessage, match="above the limit"):
        verify_batch(b"\x00" * (2 * 1024 * 1024), ENROLLED)
