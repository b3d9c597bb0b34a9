"""`gateway-headend gateways add|list|revoke` and `export`: the back office's daily tools,
on either store (`--db FILE` or `--db postgresql://...`)."""

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from uplink.headend import enrol
from uplink.headend.db import open_for_update, open_store
from uplink.headend.export import ExportQuery, kind_name, stream_records, write_csv, write_jsonl
from uplink.headend.usage import EXIT_OK, HeadendUsageError


def instant_ms(text: str) -> int:
    """argparse type: ISO 8601 (UTC unless an offset is given) or Unix milliseconds."""
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time or Unix ms: {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def cmd_gateways(args: argparse.Namespace) -> int:
    store: Any = open_for_update(args.db) if args.action != "list" else \
        open_store(args.db, create=False)
    try:
        if args.action == "add":
            if not args.gw or not args.key:
                raise HeadendUsageError("add needs GW and --key PUBKEY.pem")
            enrol.add(store, args.gw, Path(args.key).read_text())
        elif args.action == "revoke":
            if not args.gw:
                raise HeadendUsageError("revoke needs GW")
            enrol.revoke(store, args.gw)
        else:
            for row in enrol.listing(store):
                sys.stdout.write(json.dumps({"gw": row.gw, "added_ms": row.added_ms,
                                             "revoked_ms": row.revoked_ms}) + "\n")
    finally:
        store.close()
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    store: Any = open_store(args.db, create=False)
    kinds = tuple(kind_name(k) for k in args.kind)
    query = ExportQuery(args.gw, args.meter, kinds, args.since, args.until)
    try:
        if store.backend == "sqlite" and not (args.meter or kinds or args.since or args.until
                                              or args.format == "csv"):
            records = store.export(args.gw)  # the original shape (no meter key)
        else:
            records = stream_records(store, query)
        if args.format == "csv":
            write_csv(records, sys.stdout, flat_readings=kinds == ("reading",))
        else:
            write_jsonl(records, sys.stdout)
    finally:
        store.close()
    return EXIT_OK


def register(sub: Any) -> None:
    gws = sub.add_parser("gateways", help="enrol, list and revoke gateways")
    gws.add_argument("action", choices=("add", "list", "revoke"))
    gws.add_argument("gw", nargs="?")
    gws.add_argument("--key", help="the gateway's public key (PEM), for add")
    gws.add_argument("--db", required=True, help="head-end database file or postgresql:// URL")
    gws.set_defaults(func=cmd_gateways)
    export = sub.add_parser("export", help="stream stored records as JSON lines or CSV")
    export.add_argument("--db", required=True, help="an existing head-end database")
    export.add_argument("--gw")
    export.add_argument("--meter")
    export.add_argument("--kind", action="append", default=[],
                        help="readings, intervals, ledger, events, results, billing (repeatable)")
    export.add_argument("--since", type=instant_ms, help="ISO 8601 or Unix ms (inclusive)")
    export.add_argument("--until", type=instant_ms, help="ISO 8601 or Unix ms (exclusive)")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.set_defaults(func=cmd_export)
