"""The prepay credit ledger: append-only, idempotent entries with their outbox rows.

Money is in integer units of 1/10000 of the currency unit. Each entry carries the change of
the net balance (`amount`) and of its three parts: spendable `credit`, `debt` owed and
`emergency` credit outstanding (amount = credit - debt - emergency). `prepay_accounts` keeps
running totals, updated in the same transaction; `verify_account` recomputes them from the
ledger. Every function takes the caller's open transaction (a sqlite3 connection inside
`store.transaction()`), so a reading, its charge and their outbox rows commit together.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from storage.errors import StorageError

OUTBOX_KIND = "ledger"
OUTBOX_PRIORITY = 1  # docs/architecture.md: cmd_result 0, ledger 1, event 2, reading 3
KINDS = (
    "topup",
    "charge",
    "standing_charge",
    "emergency_credit",
    "emergency_repayment",
    "debt_recovery",
    "adjustment",
)
LOADS = ("topup",)  # what "total loaded" sums
CHARGES = ("charge", "standing_charge")  # what "total charged" sums



class SqlTx(Protocol):
    """What the ledger needs of a transaction: storage.store.Transaction or a connection."""

    def execute(self, sql: str, params: Any = ..., /) -> sqlite3.Cursor: ...


# store.outbox_add(tx, kind, ref, ts_ms) -> record id
OutboxAdd = Callable[[Any, str, int, int], int]


class LedgerError(StorageError):
    """A ledger write is invalid (unknown kind, broken sum, reused key); names meter and key."""


@dataclass(frozen=True, slots=True)
class Account:
    """A meter's money position, all in money units (1/10000)."""

    meter_id: str
    balance: int = 0
    credit: int = 0
    debt: int = 0
    emergency: int = 0
    loaded_total: int = 0
    charged_total: int = 0
    last_load_amount: int | None = None
    last_load_ms: int | None = None
    emergency_used: bool = False
    carry: int = 0
    standing_through: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger row; parts are changes (signed), `key` the idempotency key."""

    meter_id: str
    kind: str
    key: str
    ts_ms: int
    credit: int = 0
    debt: int = 0
    emergency: int = 0
    data: Mapping[str, Any] | None = None
    id: int | None = None
    balance_after: int | None = None

    @property
    def amount(self) -> int:
        return self.credit - self.debt - self.emergency


_ACCOUNT_COLS = (
    "balance, credit, debt, emergency, loaded_total, charged_total, last_load_amount, "
    "last_load_ms, emergency_used, carry, standing_through"
)


def account(conn: SqlTx, meter_id: str) -> Account:
    """The meter's running totals (all zero for a meter never credited)."""
    row = conn.execute(
        f"SELECT {_ACCOUNT_COLS} FROM prepay_accounts WHERE meter_id = ?", (meter_id,)
    ).fetchone()
    if row is None:
        return Account(meter_id)
    return Account(
        meter_id,
        balance=row[0],
        credit=row[1],
        debt=row[2],
        emergency=row[3],
        loaded_total=row[4],
        charged_total=row[5],
        last_load_amount=row[6],
        last_load_ms=row[7],
        emergency_used=bool(row[8]),
        carry=row[9],
        standing_through=row[10],
    )


def has_key(conn: SqlTx, key: str) -> bool:
    """True when an entry with this idempotency key was already written."""
    return conn.execute("SELECT 1 FROM ledger WHERE ikey = ?", (key,)).fetchone() is not None


def append(tx: SqlTx, outbox_add: OutboxAdd, entries: Sequence[Entry]) -> list[int]:
    """Write entries (one logical movement) unless their first key exists; returns new ids.

    Replaying a movement whose key is already in the ledger writes nothing and returns [];
    the same key with a different meter, kind or amount raises LedgerError (a real conflict).
    """
    if not entries:
        return []
    first = entries[0]
    seen = tx.execute(
        "SELECT meter_id, kind, amount FROM ledger WHERE ikey = ?", (first.key,)
    ).fetchone()
    if seen is not None:
        if tuple(seen) != (first.meter_id, first.kind, first.amount):
            raise LedgerError(
                f"meter {first.meter_id!r}: ledger key {first.key!r} already used for "
                f"{seen[1]} {seen[2]} on meter {seen[0]!r}"
            )
        return []
    return [_append_one(tx, outbox_add, entry) for entry in entries]


def _append_one(tx: SqlTx, outbox_add: OutboxAdd, entry: Entry) -> int:
    if entry.kind not in KINDS:
        raise LedgerError(f"meter {entry.meter_id!r}: unknown ledger kind {entry.kind!r}")
    before = account(tx, entry.meter_id)
    after = _advance(before, entry)
    cursor = tx.execute(
        "INSERT INTO ledger (meter_id, ts_ms, kind, amount, credit, debt, emergency, "
        "balance_after, ikey, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            entry.meter_id, entry.ts_ms, entry.kind, entry.amount, entry.credit,
            entry.debt, entry.emergency, after.balance, entry.key,
            json.dumps(dict(entry.data or {}), sort_keys=True),
        ),
    )
    ledger_id = int(cursor.lastrowid or 0)
    _save_account(tx, after)
    outbox_add(tx, OUTBOX_KIND, ledger_id, entry.ts_ms)
    return ledger_id


def _advance(acc: Account, entry: Entry) -> Account:
    loaded = entry.amount if entry.kind in LOADS else 0
    charged = -entry.amount if entry.kind in CHARGES else 0
    return Account(
        acc.meter_id,
        balance=acc.balance + entry.amount,
        credit=acc.credit + entry.credit,
        debt=acc.debt + entry.debt,
        emergency=acc.emergency + entry.emergency,
        loaded_total=acc.loaded_total + loaded,
        charged_total=acc.charged_total + charged,
        last_load_amount=entry.amount if loaded else acc.last_load_amount,
        last_load_ms=entry.ts_ms if loaded else acc.last_load_ms,
        emergency_used=acc.emergency_used or entry.kind == "emergency_credit",
        carry=acc.carry,
        standing_through=acc.standing_through,
    )


def _save_account(tx: SqlTx, acc: Account) -> None:
    tx.execute(
        f"INSERT OR REPLACE INTO prepay_accounts (meter_id, {_ACCOUNT_COLS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            acc.meter_id, acc.balance, acc.credit, acc.debt, acc.emergency, acc.loaded_total,
            acc.charged_total, acc.last_load_amount, acc.last_load_ms, int(acc.emergency_used),
            acc.carry, acc.standing_through,
        ),
    )


def set_carry(tx: SqlTx, meter_id: str, carry: int) -> None:
    """Store the sub-unit remainder carried to the meter's next charge (0 <= carry < 1000)."""
    _save_account(tx, replace(account(tx, meter_id), carry=carry))


def set_standing_through(tx: SqlTx, meter_id: str, day: str) -> None:
    """Record the last local day (ISO date) whose standing charge was written."""
    _save_account(tx, replace(account(tx, meter_id), standing_through=day))


def entries(
    conn: SqlTx, meter_id: str | None = None, after_id: int = 0, limit: int = 1000
) -> list[Entry]:
    """Ledger rows after `after_id`, oldest first, optionally of one meter."""
    sql = (
        "SELECT id, meter_id, kind, ikey, ts_ms, credit, debt, emergency, data, balance_after "
        "FROM ledger WHERE id > ?"
    )
    params: list[Any] = [after_id]
    if meter_id is not None:
        sql += " AND meter_id = ?"
        params.append(meter_id)
    rows = conn.execute(sql + " ORDER BY id LIMIT ?", (*params, limit)).fetchall()
    return [
        Entry(m, k, key, ts, c, d, e, json.loads(data), id=i, balance_after=bal)
        for i, m, k, key, ts, c, d, e, data, bal in rows
    ]


def verify_account(conn: SqlTx, meter_id: str) -> Account:
    """Recompute the meter's totals from the ledger; LedgerError if the cache disagrees."""
    row = conn.execute(
        "SELECT coalesce(sum(amount), 0), coalesce(sum(credit), 0), coalesce(sum(debt), 0), "
        "coalesce(sum(emergency), 0), "
        "coalesce(sum(CASE WHEN kind = 'topup' THEN amount END), 0), "
        "coalesce(-sum(CASE WHEN kind IN ('charge', 'standing_charge') THEN amount END), 0) "
        "FROM ledger WHERE meter_id = ?",
        (meter_id,),
    ).fetchone()
    cached = account(conn, meter_id)
    derived = (
        cached.balance, cached.credit, cached.debt, cached.emergency,
        cached.loaded_total, cached.charged_total,
    )
    if tuple(row) != derived:
        raise LedgerError(f"meter {meter_id!r}: account totals {derived} != ledger sums {row}")
    return cached


def outbox_bodies(conn: SqlTx, refs: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Outbox loader for kind `ledger`: {ledger id: record body sent upstream}."""
    bodies: dict[int, dict[str, Any]] = {}
    for start in range(0, len(refs), 500):
        part = list(refs[start : start + 500])
        marks = ", ".join("?" * len(part))
        rows = conn.execute(
            "SELECT id, meter_id, ts_ms, kind, amount, credit, debt, emergency, balance_after, "
            f"ikey, data FROM ledger WHERE id IN ({marks})",
            part,
        ).fetchall()
        for i, meter, ts, kind, amount, credit, debt, emerg, bal, key, data in rows:
            bodies[i] = {
                "meter": meter, "ts_ms": ts, "kind": kind, "amount": amount, "credit": credit,
                "debt": debt, "emergency": emerg, "balance": bal, "key": key,
                "data": json.loads(data),
            }
    return bodies


# --- prepay state beside the ledger: settings, register marks, tariffs, relays, vouchers ---


def settings(conn: SqlTx, meter_id: str) -> dict[str, Any]:
    """Command-set overrides of a meter ({} when none): mode, warn_limit, tariff_id."""
    row = conn.execute(
        "SELECT mode, warn_limit, tariff_id FROM prepay_settings WHERE meter_id = ?", (meter_id,)
    ).fetchone()
    if row is None:
        return {}
    names = ("mode", "warn_limit", "tariff_id")
    return {k: v for k, v in zip(names, row, strict=True) if v is not None}


def save_setting(tx: SqlTx, meter_id: str, key: str, value: Any, ts_ms: int) -> None:
    """Set one override (`mode`, `warn_limit` or `tariff_id`) of a meter."""
    if key not in ("mode", "warn_limit", "tariff_id"):
        raise LedgerError(f"meter {meter_id!r}: unknown prepay setting {key!r}")
    tx.execute(
        "INSERT INTO prepay_settings (meter_id, updated_ms) VALUES (?, ?) "
        "ON CONFLICT (meter_id) DO UPDATE SET updated_ms = excluded.updated_ms",
        (meter_id, ts_ms),
    )
    tx.execute(f"UPDATE prepay_settings SET {key} = ? WHERE meter_id = ?", (value, meter_id))


def mark(conn: SqlTx, meter_id: str, register: str) -> tuple[int, int] | None:
    """(milli-units, ts_ms) of the register at the last charged reading, None if none."""
    row = conn.execute(
        "SELECT milli, ts_ms FROM prepay_marks WHERE meter_id = ? AND register = ?",
        (meter_id, register),
    ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def save_mark(
    tx: SqlTx, meter_id: str, register: str, milli: int, ts_ms: int,
    reading_id: int | None,
) -> None:
    tx.execute(
        "INSERT OR REPLACE INTO prepay_marks (meter_id, register, milli, ts_ms, reading_id) "
        "VALUES (?, ?, ?, ?, ?)",
        (meter_id, register, milli, ts_ms, reading_id),
    )


def tariffs(conn: SqlTx) -> dict[str, dict[str, Any]]:
    """Tariff definitions set by command: {tariff id: definition}."""
    rows = conn.execute("SELECT tariff_id, definition FROM prepay_tariffs").fetchall()
    return {tid: json.loads(text) for tid, text in rows}


def save_tariff(
    tx: SqlTx, tariff_id: str, definition: Mapping[str, Any], ts_ms: int
) -> None:
    tx.execute(
        "INSERT OR REPLACE INTO prepay_tariffs (tariff_id, definition, updated_ms) "
        "VALUES (?, ?, ?)",
        (tariff_id, json.dumps(dict(definition), sort_keys=True), ts_ms),
    )


def relay_state(conn: SqlTx, meter_id: str) -> dict[str, Any] | None:
    """The persisted relay machine state of a meter, None if never saved."""
    row = conn.execute(
        "SELECT state FROM prepay_relays WHERE meter_id = ?", (meter_id,)
    ).fetchone()
    return None if row is None else dict(json.loads(row[0]))


def save_relay_state(
    tx: SqlTx, meter_id: str, state: Mapping[str, Any], ts_ms: int
) -> None:
    tx.execute(
        "INSERT OR REPLACE INTO prepay_relays (meter_id, state, updated_ms) VALUES (?, ?, ?)",
        (meter_id, json.dumps(dict(state), sort_keys=True), ts_ms),
    )


def voucher_redeemed(conn: SqlTx, voucher_id: str) -> bool:
    return conn.execute("SELECT 1 FROM vouchers WHERE id = ?", (voucher_id,)).fetchone() is not None


def save_voucher(
    tx: SqlTx, voucher_id: str, meter_id: str, amount: int, kid: str, ts_ms: int
) -> None:
    """Record a redeemed voucher; a second redemption of the same id raises LedgerError."""
    if voucher_redeemed(tx, voucher_id):
        raise LedgerError(f"voucher {voucher_id!r} already redeemed")
    tx.execute(
        "INSERT INTO vouchers (id, meter_id, amount, kid, redeemed_ms) VALUES (?, ?, ?, ?, ?)",
        (voucher_id, meter_id, amount, kid, ts_ms),
    )
