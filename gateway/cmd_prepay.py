"""Sub-command `prepay` (`account`, `ledger`): a meter's credit and ledger from the store."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cmd_service import DEFAULT_CONFIG, load_or_report
from storage.errors import StorageError

if TYPE_CHECKING:
    from storage.store import Store


def register(sub: argparse._SubParsersAction) -> None:
    prepay = sub.add_parser("prepay", help="prepaid credit: account and ledger of a meter")
    actions = prepay.add_subparsers(dest="prepay_action", required=True)
    account = actions.add_parser("account", help="balance, credit, debt, totals, last load")
    ledger_cmd = actions.add_parser("ledger", help="the meter's newest ledger entries")
    ledger_cmd.add_argument("--last", type=int, default=20, metavar="N")
    for parser in (account, ledger_cmd):
        parser.add_argument("--config", default=DEFAULT_CONFIG)
        parser.add_argument("--db", help="database file (default: storage.path of the config)")
        parser.add_argument("--meter", required=True)
        parser.add_argument("--json", action="store_true", help="JSON output")
    account.set_defaults(func=cmd_account)
    ledger_cmd.set_defaults(func=cmd_ledger)


def _db_path(args: argparse.Namespace) -> Path | None:
    if args.db:
        return Path(args.db)
    config = load_or_report(args.config)
    return None if config is None else config.storage.path


def _open(args: argparse.Namespace) -> Store | None:
    from storage.store import Store

    db = _db_path(args)
    if db is None:
        return None
    if not db.exists():
        sys.stderr.write(f"error: database {db} does not exist\n")
        return None
    try:
        return Store.open(db, create=False)
    except StorageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return None


def cmd_account(args: argparse.Namespace) -> int:
    from prepay.commands import account_summary
    from storage import ledger

    store = _open(args)
    if store is None:
        return 1
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

    store = _open(args)
    if store is None:
        return 1
    try:
        conn = store.db.conn
        count = max(args.last, 1)
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
