"""storage.ledger over a real Store: idempotent append-only entries with outbox rows."""

import contextlib
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepay import money
from storage import db, ledger
from storage.errors import StorageError
from storage.ledger import Entry, LedgerError
from storage.migrations import MIGRATIONS_DIR, apply_migrations
from storage.store import Store


def open_store(path: Path) -> Store:
    store = Store.open(path)
    store.register_outbox_kind(ledger.OUTBOX_KIND, ledger.OUTBOX_PRIORITY, ledger.outbox_bodies)
    return store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "gw.db")
    yield s
    s.close()


def topup(store: Store, meter: str, amount: int, key: str, share: int = 0) -> list[int]:
    with store.transaction() as tx:
        acc = ledger.account(tx, meter)
        return ledger.append(tx, store.outbox_add, money.topup_entries(acc, amount, key, 1, share))


def charge(store: Store, meter: str, amount: int, key: str) -> list[int]:
    with store.transaction() as tx:
        acc = ledger.account(tx, meter)
        entry = money.charge_entry(acc, "charge", amount, key, 2)
        return ledger.append(tx, store.outbox_add, [entry])


def test_topup_writes_entry_and_outbox_row(store: Store) -> None:
    ids = topup(store, "m1", 50_000, "tx-1")
    assert len(ids) == 1
    pending = [r for r in store.pending_outbox(10) if r.kind == "ledger"]
    assert [r.ref for r in pending] == ids
    body = pending[0].body
    assert body["kind"] == "topup" and body["amount"] == 50_000 and body["balance"] == 50_000
    acc = ledger.verify_account(store.db.conn, "m1")
    assert (acc.balance, acc.loaded_total, acc.last_load_amount, acc.last_load_ms) == (
        50_000, 50_000, 50_000, 1,
    )


def test_replay_changes_nothing_and_conflict_raises(store: Store) -> None:
    topup(store, "m1", 1000, "tx-1")
    assert topup(store, "m1", 1000, "tx-1") == []
    assert ledger.account(store.db.conn, "m1").balance == 1000
    with pytest.raises(LedgerError, match="tx-1"):
        topup(store, "m1", 2000, "tx-1")
    with pytest.raises(LedgerError, match="'m2'"):
        topup(store, "m2", 1000, "tx-1")


def test_rollback_leaves_no_entry_and_no_outbox_row(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        ledger.append(tx, store.outbox_add, [Entry("m1", "topup", "k", 1, credit=5)])
        raise RuntimeError("power cut")
    assert ledger.entries(store.db.conn) == []
    assert [r for r in store.pending_outbox(10) if r.kind == "ledger"] == []
    assert ledger.account(store.db.conn, "m1").balance == 0


def test_ledger_is_append_only(store: Store) -> None:
    topup(store, "m1", 1000, "tx-1")
    for sql in ("UPDATE ledger SET amount = 5", "DELETE FROM ledger"):
        with pytest.raises(StorageError, match="append-only"), store.transaction() as tx:
            tx.execute(sql)


def test_unknown_kind_and_broken_sum_refused(store: Store) -> None:
    with pytest.raises(LedgerError, match="bonus"), store.transaction() as tx:
        ledger.append(tx, store.outbox_add, [Entry("m1", "bonus", "k", 1, credit=5)])


def test_charge_beyond_credit_becomes_debt_recovered_by_share(store: Store) -> None:
    topup(store, "m1", 1000, "t1")
    charge(store, "m1", 3000, "r1")
    acc = ledger.account(store.db.conn, "m1")
    assert (acc.balance, acc.credit, acc.debt) == (-2000, 0, 2000)
    topup(store, "m1", 10_000, "t2", share=2500)
    acc = ledger.verify_account(store.db.conn, "m1")
    assert acc.debt == 0 and acc.credit == 8000 and acc.balance == 8000
    kinds = [e.kind for e in ledger.entries(store.db.conn, "m1")]
    assert kinds == ["topup", "charge", "topup", "debt_recovery"]


def test_emergency_credit_repaid_first(store: Store) -> None:
    with store.transaction() as tx:
        acc = ledger.account(tx, "m1")
        ledger.append(tx, store.outbox_add, [money.emergency_entry(acc, 5000, "em-1", 1)])
    acc = ledger.account(store.db.conn, "m1")
    assert (acc.balance, acc.credit, acc.emergency, acc.emergency_used) == (0, 5000, 5000, True)
    topup(store, "m1", 8000, "t1", share=5000)
    acc = ledger.verify_account(store.db.conn, "m1")
    assert (acc.balance, acc.credit, acc.emergency) == (8000, 8000, 0)


def test_state_tables_round_trip(store: Store) -> None:
    with store.transaction() as tx:
        ledger.save_setting(tx, "m1", "mode", "manual", 5)
        ledger.save_setting(tx, "m1", "warn_limit", 1234, 6)
        ledger.save_mark(tx, "m1", "grid", 1500, 7, 42)
        ledger.save_tariff(tx, "flat", {"currency": "EUR"}, 8)
        ledger.save_relay_state(tx, "m1", {"closed": False}, 9)
        ledger.save_voucher(tx, "v1", "m1", 100, "k1", 10)
    conn = store.db.conn
    assert ledger.settings(conn, "m1") == {"mode": "manual", "warn_limit": 1234}
    assert ledger.mark(conn, "m1", "grid") == (1500, 7)
    assert ledger.mark(conn, "m1", "generator") is None
    assert ledger.tariffs(conn) == {"flat": {"currency": "EUR"}}
    assert ledger.relay_state(conn, "m1") == {"closed": False}
    assert ledger.voucher_redeemed(conn, "v1")
    with pytest.raises(LedgerError, match="v1"), store.transaction() as tx:
        ledger.save_voucher(tx, "v1", "m1", 100, "k1", 11)
    with pytest.raises(LedgerError, match="colour"), store.transaction() as tx:
        ledger.save_setting(tx, "m1", "colour", "red", 5)


def test_migration_from_previous_schema(tmp_path: Path) -> None:
    older = tmp_path / "migrations"
    older.mkdir()
    for sql in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(sql.name[:4]) < 3:
            shutil.copy(sql, older / sql.name)
    path = tmp_path / "old.db"
    conn = db.open_connection(path, create=True)
    apply_migrations(conn, path, older)
    conn.execute("INSERT INTO events (ts_ms, kind, severity) VALUES (1, 'boot', 'info')")
    conn.close()
    store = open_store(path)
    try:
        topup(store, "m1", 7, "t")
        assert ledger.account(store.db.conn, "m1").balance == 7
        assert store.db.conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1
    finally:
        store.close()


MOVES = st.lists(
    st.tuples(
        st.sampled_from(["topup", "charge", "standing", "emergency", "adjust"]),
        st.integers(0, 10**7),
        st.integers(0, 30),  # key: small range so replays happen
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(MOVES, st.integers(0, 10_000))
def test_balance_is_loads_minus_charges(moves: list, share: int) -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for sql in sorted(MIGRATIONS_DIR.glob("*.sql")):
        conn.executescript(sql.read_text())
    outbox: list[int] = []

    def add(_tx: object, kind: str, ref: int, _ts: int) -> int:
        assert kind == "ledger"
        outbox.append(ref)
        return len(outbox)

    for kind, amount, key_no in moves:
        acc = ledger.account(conn, "m")
        key = f"{kind}-{key_no}"
        if kind == "topup":
            new = money.topup_entries(acc, amount, key, 1, share)
        elif kind == "emergency":
            new = [money.emergency_entry(acc, amount, key, 1)]
        elif kind == "adjust":
            new = [money.adjustment_entry(acc, amount - 5 * 10**6, key, 1, "test")]
        else:
            new = [money.charge_entry(acc, "charge" if kind == "charge" else "standing_charge",
                                      amount, key, 1)]
        if ledger.has_key(conn, key) and ledger.entries(conn, "m"):
            before = ledger.account(conn, "m")
            with contextlib.suppress(LedgerError):
                assert ledger.append(conn, add, new) == []
            assert ledger.account(conn, "m") == before
            continue
        ledger.append(conn, add, new)
    acc = ledger.verify_account(conn, "m")
    rows = ledger.entries(conn, "m", limit=10**6)
    adjustments = sum(e.amount for e in rows if e.kind == "adjustment")
    assert acc.balance == acc.loaded_total - acc.charged_total + adjustments
    assert acc.balance == acc.credit - acc.debt - acc.emergency
    assert acc.credit >= 0 and acc.debt >= 0 and acc.emergency >= 0
    assert sorted(outbox) == [e.id for e in rows]
