"""Sub-command `prepay` (`account`, `ledger`): a meter's credit and ledger from the store."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli.args import positive_int
from gateway.cli.cmd_service import DEFAULT_CONFIG, load_or_report
from gateway.cli.main import EXIT_CONFIG, EXIT_FAILURE
from storage.errors import StorageError

if TYPE_CHECKING:
    from storage.store import Store


def register(sub: argparse._SubParsersAction) -> None:
    prepay = sub.add_parser("prepay", help="prepaid credit: account and ledger of a meter")
    actions = prepay.add_subparsers(dest="prepay_action", required=True)
    account = actions.add_parser("account", help="balance, credit, debt, totals, last load")
    ledger_cmd = actions.add_parser("ledger", help="the meter's newest ledger entries")
    ledger_cmd.add_argument("--last", type=positive_int, default=20, metavar="N")
    for parser in (account, ledger_cmd):
        parser.add_argument("--config", default=DEFAULT_CONFIG)
        parser.add_argument("--db", help="database file (default: storage.path of the config)")
        parser.add_argument("--meter", required=True)
        parser.add_argument("--json", action="store_true", help="JSON output")
    account.set_defaults(func=cmd_account)
    ledger_cmd.set_defaults(func=cmd_ledger)


class _CannotOpen(Exception):
    """The store is not there or not usable; the reason is already printed."""

    def __init__(self, status: int) -> None:
        self.status = status


def _db_path(args: argparse.Namespace) -> Path:
    if args.db:
        return Path(args.db)
    config = load_or_report(args.config)
    if config is None:
        raise _CannotOpen(EXIT_CONFIG)  # a config problem is exit 2, as everywhere
    return config.storage.path


def _open(args: argparse.Namespace) -> Store:
    """The store holding the meter's account; _CannotOpen after one line on stderr."""
    from storage.store import Store

    db = _db_path(args)
    if not db.exists():
        sys.stderr.write(f"error: database {db} does not exist\n")
        raise _CannotOpen(EXIT_FAILURE)
    try:
        store = Store.open(db, create=False)
    except StorageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise _CannotOpen(EXIT_FAILURE) from None
    if not _known_meter(store, args.meter):
        # an all-zero account for a typo would look like a real, empty one
        store.close()
        sys.stderr.write(f"error: no meter {args.meter!r} in {db}\n")
        raise _CannotOpen(EXIT_FAILURE)
    return store


def _known_meter(store: Store, meter_id: str) -> bool:
    """Registered by the service, or holding an account (a store written by prepay alone)."""
    row = store.db.conn.execute(
        "SELECT 1 FROM meters WHERE id = ? UNION ALL "
        "SELECT 1 FROM prepay_accounts WHERE meter_id = ? LIMIT 1", (meter_id, meter_id))
    return row.fetchone() is not None


def cmd_account(args: argparse.Namespace) -> int:
    from prepay.commands import account_summary
    from storage import ledger

    try:
        store = _open(args)
    except _CannotOpen as exc:
        return exc.status
    try:
        conn = store.db.conn
        summary = account_summary(conn, args.meter)
        summary["settings"] = ledger.settings(conn, args.meter)
        summary["relay_closed"] = (ledger.relay_state(conn, args.meter) or {}).get("closed")
    finally:
        store.close()
    if args.json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        for key, value in summary.items():
            sys.stdout.write(f"{key:14} {value}\n")
    return 0


def cmd_ledger(args: argparse.Namespace) -> int:
    from prepay.tariffs import money_text
    from storage import ledger

    try:
        store = _open(args)
    except _CannotOpen as exc:
        return exc.status
    try:
        conn = store.db.conn
        count = args.last
        oldest = conn.execute(
            "SELECT min(id) FROM (SELECT id FROM ledger WHERE meter_id = ? "
            "ORDER BY id DESC LIMIT ?)", (args.meter, count)).fetchone()[0]
        rows = [] if oldest is None else ledger.entries(conn, args.meter, oldest - 1, count)
    finally:
        store.close()
    if not rows:
        sys.stderr.write(f"no ledger entries for meter {args.meter!r}\n")
        return 1
    for e in rows:
        ts = datetime.fromtimestamp(e.ts_ms / 1000, UTC)
        if args.json:
            sys.stdout.write(json.dumps({"id": e.id, "ts": ts.isoformat(), "kind": e.kind,
                                         "amount": money_text(e.amount), "key": e.key,
                                         "balance": money_text(e.balance_after or 0)}) + "\n")
        else:
            sys.stdout.write(f"{ts:%Y-%m-%d %H:%M:%S}Z {e.kind:20} {money_text(e.amount):>14} "
                             f"balance {money_text(e.balance_after or 0):>14}  {e.key}\n")
    return 0
