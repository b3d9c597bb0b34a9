"""`gateway-headend voucher issue|receipts`: the back office's side of USB-stick vouchers."""

import argparse
import json
import sys
import time
from pathlib import Path

from uplink.headend.usage import EXIT_FAILURE, EXIT_OK, HeadendUsageError, parse_enrolment
from uplink.headend.voucher_issue import (
    DEFAULT_MAX_AMOUNT,
    LEDGER_FILE,
    VoucherSpec,
    check_amount,
    issue,
    issued_summary,
    load_ledger,
    parse_expiry,
)
from uplink.headend.voucher_receipts import PROBLEMS, receipts_folder, reconcile, table
from uplink.keys import load_private_key

# `receipts` exits 1 when a receipt is unknown, forged or disagrees with the ledger.
EXIT_PROBLEMS = EXIT_FAILURE


def cmd_issue(args: argparse.Namespace) -> int:
    check_amount(args.amount, args.currency, args.max_amount)
    key_file = Path(args.key)
    spec = VoucherSpec(args.gw, args.meter, args.amount, args.currency,
                       parse_expiry(args.expires, time.time()), args.kid or key_file.stem)
    out = Path(args.out)
    issued = issue(spec, load_private_key(key_file), out, args.count,
                   Path(args.ledger) if args.ledger else None)
    for entry in issued:
        line = issued_summary(entry)
        sys.stdout.write(json.dumps(line) + "\n" if args.json else
                         f"{line['id']}  {line['meter']}  {line['amount']} {line['currency']}"
                         f"  expires {line['expires']}  {out / line['file']}\n")
    return EXIT_OK


def cmd_receipts(args: argparse.Namespace) -> int:
    if not args.gateway_key:
        raise HeadendUsageError("--gateway-key GW=PUBKEY.pem: at least one is needed")
    keys = parse_enrolment(args.gateway_key, option="--gateway-key")
    rows = reconcile(receipts_folder(Path(args.dir)), keys, load_ledger(Path(args.ledger)))
    if args.json:
        for row in rows:
            sys.stdout.write(json.dumps(row.as_dict()) + "\n")
    else:
        sys.stdout.write("\n".join(table(rows)) + "\n")
    return EXIT_PROBLEMS if any(r.status in PROBLEMS for r in rows) else EXIT_OK


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    voucher = sub.add_parser("voucher", help="USB-stick vouchers: issue, reconcile receipts")
    actions = voucher.add_subparsers(dest="voucher_action", metavar="ACTION", required=True)
    p = actions.add_parser("issue", help="sign vouchers into OUT/vouchers/ and the ledger")
    p.add_argument("--gw", required=True, help="the gateway the meter is on")
    p.add_argument("--meter", required=True)
    p.add_argument("--amount", required=True, help='decimal, up to 4 decimals ("20.00")')
    p.add_argument("--currency", default="EUR")
    p.add_argument("--expires", help="YYYY-MM-DD (through that day, UTC) or ISO datetime "
                                     "with offset (default: in 365 days)")
    p.add_argument("--count", type=whole_number, default=1, help="vouchers to issue")
    p.add_argument("--key", required=True, help="voucher signing key (gateway-headend keys "
                                                "init --key FILE)")
    p.add_argument("--kid", help="key name in the gateways' voucher_keys (default: the key "
                                 "file's name without .pem)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--ledger", help=f"issued-vouchers ledger (default: OUT/{LEDGER_FILE})")
    p.add_argument("--max-amount", default=DEFAULT_MAX_AMOUNT, help="largest amount allowed")
    p.add_argument("--json", action="store_true", help="one JSON object per voucher")
    p.set_defaults(func=cmd_issue)
    r = actions.add_parser("receipts", help="verify a stick's receipts against the ledger")
    r.add_argument("dir", help="the stick (holding receipts/) or the receipts folder")
    r.add_argument("--ledger", required=True, help=f"the issue run's {LEDGER_FILE}")
    r.add_argument("--gateway-key", action="append", default=[], metavar="GW=PUBKEY.pem",
                   help="a gateway's public key (gateway keys show), repeatable")
    r.add_argument("--json", action="store_true", help="one JSON object per row")
    r.set_defaults(func=cmd_receipts)
