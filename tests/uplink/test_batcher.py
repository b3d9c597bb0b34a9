"""Batcher and batch bookkeeping: size cap, chain continuity across restarts, migration 0002."""

import hashlib
import shutil
import time
from decimal import Decimal
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import batches
from storage.db import open_connection
from storage.migrations import MIGRATIONS_DIR, apply_migrations
from storage.records import ReadingSet, StoredValue
from storage.store import Store
from uplink.batcher import Batcher
from uplink.codec import ZERO_HASH, decode_batch_payload
from uplink.commands import screen_command
from uplink.cose import parse_sign1, sign1, verify_sign1
from uplink.errors import UplinkError

KEY = Ed25519PrivateKey.generate()


def fill(store: Store, n: int, meters: int = 20) -> None:
    store.add_readings([ReadingSet(f"meter-{i % meters}", 1_700_000_000_000 + i, tuple(
        StoredValue(q, Decimal(f"{i * 3 + k}.{k}"), "") for k, q in enumerate(
            ("import_active_energy", "voltage_l1", "current_l1", "active_power"))))
        for i in range(n)])


def test_batches_respect_cap_and_chain(store: Store) -> None:
    fill(store, 3000)
    batcher = Batcher(store, "gw", KEY, compress=True)
    prev, seq, seen = ZERO_HASH, 0, 0
    while (built := batcher.build(4096)) is not None:
        raw = built.batch.data
        assert len(raw) <= 4096
        payload = decode_batch_payload(verify_sign1(parse_sign1(raw, max_bytes=8192),
                                                    KEY.public_key()))
        assert payload.seq == seq + 1 and payload.prev == prev
        assert [r.id for r in payload.records] == built.record_ids
        prev, seq = hashlib.sha256(raw).digest(), payload.seq
        seen += len(payload.records)
    assert seen == 3000


def test_chain_continues_after_reopen(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "g.db")
    fill(store, 10)
    first = Batcher(store, "gw", KEY, compress=False).build(65536)
    store.close()
    store = Store.open(tmp_path / "g.db")
    fill(store, 10)
    second = Batcher(store, "gw", KEY, compress=False).build(65536)
    assert first is not None and second is not None
    payload = decode_batch_payload(parse_sign1(second.batch.data, max_bytes=1 << 20).payload)
    assert payload.seq == 2 and payload.prev == hashlib.sha256(first.batch.data).digest()
    with store.transaction() as tx:
        assert batches.chain_head(tx) == (2, second.batch.sha256)
        assert batches.mark_acked_through(tx, 1, 5) == 1
        assert batches.mark_acked_through(tx, 0, 6) == 1  # an older ack changes nothing
        assert [b.seq for b in batches.unacked_batches(tx)] == [2]
    store.close()


def test_one_record_above_the_cap_goes_alone(store: Store) -> None:
    big = tuple(StoredValue(f"q{i}", Decimal(i), "") for i in range(400))
    store.add_readings([ReadingSet("m", 1, big), ReadingSet("m", 2, big[:1])])
    built = Batcher(store, "gw", KEY, compress=False).build(1024)
    assert built is not None and len(built.record_ids) == 1 and len(built.batch.data) > 1024


def test_migration_0002_from_a_spine_database(tmp_path: Path) -> None:
    only_spine = tmp_path / "migrations"
    only_spine.mkdir()
    shutil.copy(next(MIGRATIONS_DIR.glob("0001_*.sql")), only_spine)
    conn = open_connection(tmp_path / "old.db", create=True)
    apply_migrations(conn, tmp_path / "old.db", only_spine)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()
    store = Store.open(tmp_path / "old.db")
    with store.transaction() as tx:
        assert batches.chain_head(tx) == (0, ZERO_HASH)
        assert batches.remember_command(tx, "c1", 10_000, 1)
        assert not batches.remember_command(tx, "c1", 10_000, 2)
        assert batches.remember_command(tx, "c1", 30_000, 20_000)  # expired id pruned
    store.close()


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_fuzz_down_cmd_never_raises(data: bytes) -> None:
    screened = screen_command(data, KEY.public_key(), "gw", time.time())
    assert screened.reason is not None


@settings(max_examples=150)
@given(st.integers(0, 10_000), st.integers(0, 255))
def test_fuzz_mutated_signed_command(pos: int, byte: int) -> None:
    import cbor2
    body = cbor2.dumps({"id": "c", "gw": "gw", "exp": 2**40, "op": "ping", "args": {}})
    raw = bytearray(sign1(body, KEY, b"headend"))
    raw[pos % len(raw)] = byte
    screened = screen_command(bytes(raw), KEY.public_key(), "gw", time.time())  # never raises
    if screened.reason is None:  # only when the "mutation" wrote the byte already there
        assert screened.command is not None and screened.command.id == "c"


def test_settings_from_toml_section() -> None:
    from pathlib import Path as P

    import pytest

    from uplink.settings import settings_from_section
    s = settings_from_section({"broker_url": "mqtts://broker:8883", "mqtt_version": "3.1.1",
                               "ack_timeout_s": 10, "tls_ca": "/etc/ca.pem",
                               "compress": False}, "gw7")
    assert (s.gateway_id, s.ack_timeout_s, s.tls_ca, s.compress) == ("gw7", 10.0,
                                                                      P("/etc/ca.pem"), False)
    with pytest.raises(UplinkError) as info:
        settings_from_section({"bogus": 1, "max_batch_bytes": "big", "compress": 1}, "gw")
    for key in ("bogus", "max_batch_bytes", "compress"):
        assert f"[uplink] {key}" in str(info.value)
    with pytest.raises(UplinkError, match="mqtt_version"):
        settings_from_section({"mqtt_version": "4"}, "gw")
    with pytest.raises(UplinkError, match="broker URL"):
        settings_from_section({"broker_url": "http://x"}, "gw")
