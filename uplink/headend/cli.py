"""`gateway-headend`: keys init|show, serve, cmd, export, voucher issue|receipts (the
reference back office)."""

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from uplink.errors import UplinkError
from uplink.headend.command import CommandRequest, CommandTimeout, send_and_wait
from uplink.headend.config import apply_config
from uplink.headend.db import open_store
from uplink.headend.enrol import REFRESH_S, KeyRing
from uplink.headend.loadtest import register as register_loadtest
from uplink.headend.ops_cli import register as register_ops
from uplink.headend.release_cli import register as register_release
from uplink.headend.remote_cli import register as register_remote
from uplink.headend.server import DEFAULT_COMMAND_TTL_S, HeadEnd
from uplink.headend.usage import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    HeadendUsageError,
    parse_enrolment,
)
from uplink.headend.voucher_cli import register as register_voucher
from uplink.headend.web.app import register as register_web
from uplink.keys import (
    HEADEND_KEY_FILE,
    create_private_key,
    load_private_key,
    public_pem,
)

LOGGER = logging.getLogger(__name__)
# What `serve` options hold when not given (a config file may replace these).
SERVE_DEFAULTS: dict[str, object] = {"db": None, "broker": "mqtt://127.0.0.1:1883",
                                     "prefix": "mtr", "state": ".", "key": None,
                                     "gap_grace": 0.0, "key_refresh": REFRESH_S}
# A gateway online answers within seconds; longer usually means it is offline.
DEFAULT_RESULT_TIMEOUT_S = 60.0


def _key_file(args: argparse.Namespace) -> Path:
    return Path(args.key) if getattr(args, "key", None) else Path(args.state) / HEADEND_KEY_FILE


def cmd_keys(args: argparse.Namespace) -> int:
    path = _key_file(args)
    key = create_private_key(path) if args.keys_action == "init" else load_private_key(path)
    sys.stdout.write(public_pem(key))
    return EXIT_OK


async def _serve(args: argparse.Namespace) -> None:
    store = open_store(args.db, gap_grace_ms=int(args.gap_grace * 1000))
    # PostgreSQL: the store's connection belongs to the store thread, the key ring has its own
    threaded = store.backend == "postgresql"
    key_store = open_store(args.db) if threaded else store
    keys = KeyRing(key_store, parse_enrolment(args.enrol), refresh_s=args.key_refresh)
    headend = HeadEnd(store, keys, load_private_key(_key_file(args)),
                      broker_url=args.broker, prefix=args.prefix, store_thread=threaded,
                      store_threads=args.store_connections if threaded else 1,
                      store_factory=lambda: open_store(args.db,
                                                       gap_grace_ms=int(args.gap_grace * 1000)))
    try:
        await headend.run()
    finally:
        store.close()
        if key_store is not store:
            key_store.close()


def cmd_serve(args: argparse.Namespace) -> int:
    apply_config(args, SERVE_DEFAULTS)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return EXIT_OK


def cmd_cmd(args: argparse.Namespace) -> int:
    request = CommandRequest(args.broker, args.prefix, args.gw, args.op, args.args, args.ttl,
                             args.id)
    try:
        result = asyncio.run(send_and_wait(request, load_private_key(_key_file(args)),
                                           args.db, args.timeout))
    except CommandTimeout as exc:
        sys.stderr.write(f"gateway-headend cmd: {exc}\n")
        return EXIT_TIMEOUT
    sys.stdout.write(result.as_json() + "\n")
    return EXIT_OK if result.ok else EXIT_FAILURE


def json_object(text: str) -> dict[str, Any]:
    """argparse type: a JSON object (command arguments)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, not {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be positive seconds, not {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway-headend", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    keys = sub.add_parser("keys", help="the head-end signing key")
    keys.add_argument("keys_action", choices=("init", "show"))
    keys.add_argument("--state", default=".", help="directory of the key file")
    keys.add_argument("--key", help="key file (default: STATE/" + HEADEND_KEY_FILE + ")")
    keys.set_defaults(func=cmd_keys)
    for name, func, text in (("serve", cmd_serve, "receive, verify, store and ack batches"),
                             ("cmd", cmd_cmd, "sign and send one command")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--broker", default="mqtt://127.0.0.1:1883")
        p.add_argument("--prefix", default="mtr")
        p.add_argument("--state", default=".")
        p.add_argument("--key", help="head-end private key file")
        p.set_defaults(func=func)
    serve = sub.choices["serve"]
    serve.add_argument("--config", help="TOML file with a [headend] table (db, broker, ...)")
    serve.add_argument("--db",
                       help="SQLite file (one machine) or postgresql://... (a fleet of workers)")
    serve.add_argument("--gap-grace", type=float, default=0.0, metavar="S",
                       help="several workers: report a gap only once it is S seconds old")
    serve.add_argument("--enrol", action="append", default=[], metavar="GW=PUBKEY.pem")
    serve.add_argument("--store-connections", type=int, default=1, metavar="N",
                       help="PostgreSQL: transactions in flight at once, one connection each "
                            "(more than 1: give --gap-grace too, as for several workers)")
    serve.add_argument("--key-refresh", type=float, default=REFRESH_S, metavar="S",
                       help="look a gateway's key up again after S seconds: a revoke takes "
                            "effect within S (0: at every batch)")
    cmd = sub.choices["cmd"]
    cmd.add_argument("--db", required=True,
                     help="the serving head-end's database, where the result arrives")
    cmd.add_argument("--gw", required=True)
    cmd.add_argument("--op", required=True)
    cmd.add_argument("--args", type=json_object, default={}, help="JSON object")
    cmd.add_argument("--ttl", type=int, default=DEFAULT_COMMAND_TTL_S, help="seconds")
    cmd.add_argument("--id", help="command id (default: random)")
    cmd.add_argument("--timeout", type=positive_seconds, default=DEFAULT_RESULT_TIMEOUT_S,
                     metavar="S", help="wait this long for the result (exit 3 after)")
    register_ops(sub)
    register_remote(sub)
    register_release(sub)
    register_loadtest(sub)
    register_web(sub)
    register_voucher(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # serve is a service and logs its work; the one-shot commands keep stderr for problems
    level = logging.INFO if args.command == "serve" else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s")
    try:
        return int(args.func(args))
    except HeadendUsageError as exc:
        sys.stderr.write(f"gateway-headend {args.command}: {exc}\n")
        return EXIT_USAGE
    except UplinkError as exc:
        sys.stderr.write(f"gateway-headend {args.command}: {exc}\n")
        return EXIT_FAILURE
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
