"""Money movements as ledger entries: top-ups split by the core, charges split into debt."""

from __future__ import annotations

from typing import Any

from prepay import core
from storage.ledger import Account, Entry


def topup_entries(
    acc: Account, amount: int, key: str, ts_ms: int, share_bp: int,
    data: dict[str, Any] | None = None,
) -> list[Entry]:
    """A top-up, then what it repays: emergency credit first, then a share against debt.

    The first entry carries the idempotency key (a replay is recognised by it); the derived
    entries use the key with a suffix so they are unique too.
    """
    repay, recover, _ = core.split_topup(amount, acc.debt, acc.emergency, share_bp)
    meter = acc.meter_id
    out = [Entry(meter, "topup", key, ts_ms, credit=amount, data=data)]
    if repay:
        out.append(
            Entry(meter, "emergency_repayment", key + "/emergency", ts_ms,
                  credit=-repay, emergency=-repay)
        )
    if recover:
        out.append(
            Entry(meter, "debt_recovery", key + "/debt", ts_ms, credit=-recover, debt=-recover)
        )
    return out


def charge_entry(
    acc: Account, kind: str, charge: int, key: str, ts_ms: int,
    data: dict[str, Any] | None = None,
) -> Entry:
    """A charge (or standing charge): taken from credit, the part beyond zero becomes debt."""
    taken, owed = core.split_charge(charge, acc.credit)
    return Entry(acc.meter_id, kind, key, ts_ms, credit=-taken, debt=owed, data=data)


def emergency_entry(acc: Account, amount: int, key: str, ts_ms: int) -> Entry:
    """Emergency credit: spendable now, owed back from the next top-up (net balance unchanged)."""
    return Entry(acc.meter_id, "emergency_credit", key, ts_ms, credit=amount, emergency=amount)


def adjustment_entry(acc: Account, amount: int, key: str, ts_ms: int, reason: str) -> Entry:
    """An operator correction of the net balance (signed); a debit beyond credit becomes debt."""
    taken, owed = core.split_charge(-amount, acc.credit) if amount < 0 else (-amount, 0)
    return Entry(
        acc.meter_id, "adjustment", key, ts_ms, credit=-taken, debt=owed, data={"reason": reason}
    )
