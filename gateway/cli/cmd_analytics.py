"""Sub-commands `snapshots`, `intervals`, `balance`: a meter's billing snapshots and interval
energy, the energy balance of the configured tree (read from the store, service running or not).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from gateway.cli.args import positive_int
from gateway.cli.cmd_service import DEFAULT_CONFIG, load_or_report
from gateway.cli.main import EXIT_CONFIG, EXIT_FAILURE
from storage.errors import StorageError

if TYPE_CHECKING:
    from storage.store import Store


def register(sub: argparse._SubParsersAction) -> None:
    snaps = sub.add_parser("snapshots", help="a meter's daily and billing register snapshots")
    snaps.add_argument("--last", type=positive_int, default=31, metavar="N")
    snaps.set_defaults(func=cmd_snapshots)
    intervals = sub.add_parser("intervals", help="a meter's interval energy on one local day")
    intervals.add_argument("--date", type=dt.date.fromisoformat, default=None,
                           help="YYYY-MM-DD, local to the site (default: today)")
    intervals.set_defaults(func=cmd_intervals)
    balance = sub.add_parser("balance", help="energy balance per node on one local day")
    balance.add_argument("--date", type=dt.date.fromisoformat, default=None,
                         help="YYYY-MM-DD, local to the site (default: today)")
    balance.add_argument("--intervals", action="store_true", help="every interval, not only "
                         "the day total")
    balance.set_defaults(func=cmd_balance)
    for parser in (snaps, intervals, balance):
        parser.add_argument("--config", default=DEFAULT_CONFIG)
        parser.add_argument("--json", action="store_true", help="JSON lines output")
    for parser in (snaps, intervals):
        parser.add_argument("--meter", required=True)


def _open(args: argparse.Namespace) -> tuple[Store, str] | int:
    """The store and the site's zone, or the exit status after one line on stderr."""
    from storage.store import Store

    config = load_or_report(args.config)
    if config is None:
        return EXIT_CONFIG
    db: Path = config.storage.path
    if not db.exists():
        sys.stderr.write(f"error: database {db} does not exist\n")
        return EXIT_FAILURE
    try:
        store = Store.open(db, create=False)
    except StorageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FAILURE
    meter = getattr(args, "meter", None)
    known = store.db.conn.execute("SELECT 1 FROM meters WHERE id = ?", (meter,)).fetchone()
    if meter is not None and known is None:
        store.close()
        sys.stderr.write(f"error: no meter {args.meter!r} in {db}\n")
        return EXIT_FAILURE
    return store, config.timezone


def _local(ts_ms: int, zone: str) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, ZoneInfo(zone)).isoformat(timespec="minutes")


def _emit(rows: list[dict[str, Any]], as_json: bool, columns: list[tuple[str, int]]) -> None:
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return
    sys.stdout.write(" ".join(f"{name:<{width}}" for name, width in columns).rstrip() + "\n")
    for row in rows:
        cells = ("-" if row[name] is None else str(row[name]) for name, _ in columns)
        sys.stdout.write(" ".join(f"{cell:<{width}}" for cell, (_, width)
                                  in zip(cells, columns, strict=True)).rstrip() + "\n")


def cmd_snapshots(args: argparse.Namespace) -> int:
    from storage import analytics

    opened = _open(args)
    if isinstance(opened, int):
        return opened
    store, zone = opened
    try:
        snaps = analytics.snapshots_of(store.db.conn, args.meter, args.last)
    finally:
        store.close()
    rows = [{"at": _local(s.ts_ms, zone), "kind": s.kind, "quantity": s.quantity,
             "value": None if s.value is None else str(s.value), "quality": s.quality,
             "gap_s": s.gap_ms // 1000} for s in snaps]
    _emit(rows, args.json, [("at", 22), ("kind", 7), ("quantity", 22), ("value", 14),
                            ("quality", 12), ("gap_s", 7)])
    return 0


def cmd_intervals(args: argparse.Namespace) -> int:
    from gateway.analytics.grid import local_instant_ms
    from storage import analytics

    opened = _open(args)
    if isinstance(opened, int):
        return opened
    store, zone = opened
    tz = ZoneInfo(zone)
    day = args.date or dt.datetime.now(tz).date()
    start = local_instant_ms(tz, day, 0)
    end = local_instant_ms(tz, day + dt.timedelta(days=1), 0)
    try:
        found = analytics.intervals_between(store.db.conn, args.meter, start, end)
    finally:
        store.close()
    rows = [{"from": _local(i.start_ms, zone)[11:], "quantity": i.quantity,
             "value": None if i.value is None else str(i.value),
             "quality": i.quality, "gap_s": i.gap_ms // 1000, "flags": ",".join(i.flags)}
            for i in found]
    _emit(rows, args.json, [("from", 11), ("quantity", 22), ("value", 12),
                            ("quality", 12), ("gap_s", 6), ("flags", 12)])
    return 0


def cmd_balance(args: argparse.Namespace) -> int:
    from gateway.analytics.balance import BalanceResult, day_totals
    from gateway.analytics.grid import local_instant_ms
    from storage import analytics

    opened = _open(args)
    if isinstance(opened, int):
        return opened
    store, zone = opened
    tz = ZoneInfo(zone)
    day = args.date or dt.datetime.now(tz).date()
    try:
        found = analytics.balance_between(store.db.conn, local_instant_ms(tz, day, 0),
                                          local_instant_ms(tz, day + dt.timedelta(days=1), 0))
    finally:
        store.close()
    by_node: dict[str, list[BalanceResult]] = {}
    for r in found:
        by_node.setdefault(r.node, []).append(BalanceResult(
            r.node, r.start_ms, r.end_ms, r.status, r.parent, r.children, r.loss,
            r.loss_percent, r.missing))
    rows = []
    for node, results in by_node.items():
        shown = [("day", day_totals(results))]
        if args.intervals:
            shown += [(_local(x.start_ms, zone)[11:16], x) for x in results]
        for period, x in shown:
            if x is not None:
                rows.append({"node": node, "period": period, "status": x.status,
                             "parent": _text(x.parent), "children": _text(x.children),
                             "loss": _text(x.loss), "loss_pct": _text(x.loss_percent),
                             "missing": ",".join(x.missing)})
    _emit(rows, args.json, [("node", 14), ("period", 6), ("status", 10), ("parent", 11),
                            ("children", 11), ("loss", 10), ("loss_pct", 8), ("missing", 0)])
    return 0


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
