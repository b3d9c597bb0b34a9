"""The PostgreSQL store keeps the SQLite store's chain contract, and several workers receiving
one gateway's batches out of order converge on the same chain state (row lock)."""

import threading
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.uplink.test_headend_chain import ENROLLED, chain
from uplink.codec import Unavailable
from uplink.headend.db import open_store
from uplink.headend.pg_schema import MIGRATIONS
from uplink.headend.pg_store import PgStore
from uplink.headend.verify import verify_batch


def test_migrations_apply_once(pg_url: str) -> None:
    PgStore(pg_url).close()
    store = PgStore(pg_url)  # a second worker starting: nothing to do
    try:
        versions = [r[0] for r in store.conn.execute("SELECT version FROM schema_version")]
        assert versions == list(range(1, len(MIGRATIONS) + 1))
    finally:
        store.close()


def test_out_of_order_with_duplicates_converges(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        batches = chain(6)
        for i in (3, 0, 5, 1, 1, 4, 2, 0):
            assert store.ingest(verify_batch(batches[i], ENROLLED)).status in (
                "stored", "duplicate")
        result = store.ingest(verify_batch(batches[5], ENROLLED))
        assert (result.status, result.ack, result.resend) == ("duplicate", 6, None)
        assert store.record_ids("g") == [1, 2, 3, 4, 5, 6]
        assert {a[2] for a in store.anomalies("g")} == {"gap"}
    finally:
        store.close()


def test_gap_fork_and_known_gap(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        good = chain(5)
        assert store.ingest(verify_batch(good[0], ENROLLED)).ack == 1
        gap = store.ingest(verify_batch(good[2], ENROLLED))
        assert (gap.ack, gap.resend) == (1, 2)
        other = chain(2, start_id=50)[1]  # seq 2 of another chain: prev differs
        assert store.ingest(verify_batch(other, ENROLLED)).status == "fork"
        import hashlib
        declared = Unavailable("g", 2, 2, hashlib.sha256(good[1]).digest())
        assert store.record_unavailable(declared).status == "known_gap"
        assert store.record_unavailable(declared).status == "held"  # said once
        assert store.contiguous("g") == 3
        assert store.ingest(verify_batch(good[3], ENROLLED)).ack == 4
        kinds = [a[2] for a in store.anomalies("g")]
        assert kinds == ["gap", "fork", "known_gap"]
    finally:
        store.close()


def test_two_workers_one_gateway_no_lost_update(pg_url: str) -> None:
    """Each of two connections takes every other batch, both in reverse: the row lock makes
    the chain state end at the head with no resend asked (no false gap)."""
    key = Ed25519PrivateKey.generate()
    enrolled = {"w": key.public_key()}
    batches = chain(40, key=key, gw="w")
    stores = [PgStore(pg_url), PgStore(pg_url)]
    last: list[object] = []

    def work(store: PgStore, part: list[bytes]) -> None:
        for raw in reversed(part):
            last.append(store.ingest(verify_batch(raw, enrolled)))

    threads = [threading.Thread(target=work, args=(stores[k], batches[k::2])) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert stores[0].contiguous("w") == 40
        assert stores[0].record_ids("w") == list(range(1, 41))
        final = stores[0].ingest(verify_batch(batches[-1], enrolled))
        assert (final.ack, final.resend) == (40, None)
        assert {a[2] for a in stores[0].anomalies("w")} <= {"gap"}
    finally:
        for s in stores:
            s.close()


def test_serve_config_names_the_database(tmp_path: Path) -> None:
    from uplink.headend.cli import SERVE_DEFAULTS, build_parser
    from uplink.headend.config import apply_config
    from uplink.headend.usage import HeadendUsageError
    conf = tmp_path / "headend.toml"
    conf.write_text('[headend]\ndb = "postgresql://h@db.example/headend"\ngap_grace_s = 2\n')
    args = build_parser().parse_args(["serve", "--config", str(conf), "--prefix", "x"])
    apply_config(args, SERVE_DEFAULTS)
    assert (args.db, args.gap_grace, args.prefix) == ("postgresql://h@db.example/headend", 2.0,
                                                      "x")
    conf.write_text('[headend]\ndatabase = "x"\n')
    with pytest.raises(HeadendUsageError, match="database"):
        apply_config(build_parser().parse_args(["serve", "--config", str(conf)]),
                     SERVE_DEFAULTS)


def test_tools_refuse_a_missing_sqlite_file_and_write_an_existing_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from uplink.headend import cli
    from uplink.headend.store import HeadendStore
    from uplink.keys import public_pem
    (tmp_path / "k.pem").write_text(public_pem(Ed25519PrivateKey.generate()))
    typo = tmp_path / "headnd.db"
    assert cli.main(["gateways", "add", "g1", "--key", str(tmp_path / "k.pem"),
                     "--db", str(typo)]) == 1
    assert not typo.exists()
    db = tmp_path / "headend.db"
    HeadendStore(db).close()
    assert cli.main(["gateways", "add", "g1", "--key", str(tmp_path / "k.pem"),
                     "--db", str(db)]) == 0
    assert cli.main(["gateways", "revoke", "g1", "--db", str(db)]) == 0
    assert cli.main(["gateways", "revoke", "g1", "--db", str(db)]) == 1  # already revoked
    monkeypatch.setattr("sys.stdin", io.StringIO("long-enough-password\n"))
    assert cli.main(["accounts", "add", "ann", "--role", "admin", "--db", str(db)]) == 0
    capsys.readouterr()
    assert cli.main(["gateways", "list", "--db", str(db)]) == 0
    assert '"gw": "g1"' in capsys.readouterr().out


def test_a_broken_connection_is_replaced_on_the_next_batch(pg_url: str) -> None:
    store = PgStore(pg_url)
    try:
        batches = chain(2)
        store.ingest(verify_batch(batches[0], ENROLLED))
        admin = PgStore(pg_url)
        try:  # what a server restart does to the worker's session
            admin.conn.execute("SELECT pg_terminate_backend(%s)",
                               (store.conn.info.backend_pid,))
        finally:
            admin.close()
        with pytest.raises(psycopg.OperationalError):
            store.ingest(verify_batch(batches[1], ENROLLED))
        assert store.ingest(verify_batch(batches[1], ENROLLED)).ack == 2
    finally:
        store.close()


def test_copy_keeps_tabs_backslashes_and_newlines(pg_url: str) -> None:
    import hashlib

    from tests.uplink.test_headend_chain import KEY
    from uplink.codec import ZERO_HASH, WireRecord, encode_batch_payload, record_item
    from uplink.cose import sign1
    from uplink.headend.export import ExportQuery, stream_records
    odd = "tab\there \\back\\slash\nnew\rline \\N"
    recs = [WireRecord("event", 1, 1_000_000, {"e": "x", "s": "info", "m": odd, "d": {"v": odd}})]
    raw = sign1(encode_batch_payload("g", 1, ZERO_HASH, 1000, [record_item(r, 1_000_000)
                                                             for r in recs], compress=True),
                KEY, b"g")
    store = PgStore(pg_url)
    try:
        assert store.ingest(verify_batch(raw, ENROLLED)).status == "stored"
        [rec] = list(stream_records(store, ExportQuery(gw="g")))
        assert rec["meter"] == odd and rec["body"]["d"]["v"] == odd
        assert hashlib.sha256(raw).digest() == bytes(store.conn.execute(
            "SELECT sha256 FROM batches").fetchone()[0])
    finally:
        store.close()


def test_two_workers_same_batches_at_once_store_each_once(pg_url: str) -> None:
    """A re-send delivered to both workers while the first delivery is being stored: the
    records are copied before the chain row is locked, so the second COPY meets the first's
    ids; each batch is stored once and is a `duplicate` once, with no duplicate_record."""
    key = Ed25519PrivateKey.generate()
    enrolled = {"d": key.public_key()}
    batches = chain(30, key=key, gw="d")
    stores = [PgStore(pg_url), PgStore(pg_url)]
    statuses: list[str] = []

    def work(store: PgStore) -> None:
        for raw in batches:
            statuses.append(store.ingest(verify_batch(raw, enrolled)).status)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert sorted(statuses) == ["duplicate"] * 30 + ["stored"] * 30
        assert stores[0].record_ids("d") == list(range(1, 31))
        assert stores[0].contiguous("d") == 30
        assert {a[2] for a in stores[0].anomalies("d")} <= {"gap"}
    finally:
        for s in stores:
            s.close()
