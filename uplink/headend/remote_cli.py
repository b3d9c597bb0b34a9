"""`gateway-headend config push|get GATEWAY` and `health GATEWAY` (docs/remote.md)."""

import argparse
import asyncio
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Final

from uplink.headend.command import CommandRequest, CommandTimeout, send_and_wait
from uplink.headend.remote_records import RemoteRecords
from uplink.headend.usage import EXIT_FAILURE, EXIT_OK, EXIT_TIMEOUT, HeadendUsageError
from uplink.keys import HEADEND_KEY_FILE, load_private_key

# The restart and the first reads, acks and events after the gateway's own healthy_within_s.
APPLY_MARGIN_S: Final = 120.0
OUTCOME_POLL_S: Final = 0.5
DEFAULT_TIMEOUT_S: Final = 60.0
DEFAULT_TTL_S: Final = 300


def _request(args: argparse.Namespace, op: str, cmd_args: dict[str, Any]) -> CommandRequest:
    return CommandRequest(args.broker, args.prefix, args.gateway, op, cmd_args, args.ttl)


def _key(args: argparse.Namespace) -> Any:
    return load_private_key(Path(args.key) if args.key else Path(args.state) / HEADEND_KEY_FILE)


def cmd_config(args: argparse.Namespace) -> int:
    if args.action == "get":
        return _send_print(args, "config.get", {})
    if not args.file:
        raise HeadendUsageError("config push needs GATEWAY FILE")
    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HeadendUsageError(f"{args.file}: cannot read ({exc})") from None
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    records = RemoteRecords(args.db)
    try:
        after = records.mark()
        code = _send_print(args, "config.push", {"config": text, "sha256": sha})
        if code != EXIT_OK or args.no_wait:
            return code
        return asyncio.run(_wait_outcome(records, args.gateway, sha, after, args.apply_timeout
                                         or args.healthy_within + APPLY_MARGIN_S))
    finally:
        records.close()


def _send_print(args: argparse.Namespace, op: str, cmd_args: dict[str, Any]) -> int:
    try:
        result = asyncio.run(send_and_wait(_request(args, op, cmd_args), _key(args), args.db,
                                           args.timeout))
    except CommandTimeout as exc:
        sys.stderr.write(f"gateway-headend config: {exc}\n")
        return EXIT_TIMEOUT
    sys.stdout.write(result.as_json() + "\n")
    if result.ok:
        args.healthy_within = float(result.r.get("healthy_within_s") or 0)
    return EXIT_OK if result.ok else EXIT_FAILURE


async def _wait_outcome(records: RemoteRecords, gw: str, sha: str, after: int,
                        timeout_s: float) -> int:
    try:
        async with asyncio.timeout(timeout_s):
            while (outcome := records.config_outcome(gw, sha, after)) is None:
                await asyncio.sleep(OUTCOME_POLL_S)
    except TimeoutError:
        sys.stderr.write(f"gateway-headend config: no config_applied or config_rolled_back "
                         f"from {gw} within {timeout_s:g} s\n")
        return EXIT_TIMEOUT
    sys.stdout.write(json.dumps(outcome, separators=(",", ":")) + "\n")
    return EXIT_OK if outcome["event"] == "config_applied" else EXIT_FAILURE


def cmd_health(args: argparse.Namespace) -> int:
    records = RemoteRecords(args.db)
    try:
        health = records.latest_health(args.gateway)
    finally:
        records.close()
    if health is None:
        sys.stderr.write(f"gateway-headend health: no health record from {args.gateway}\n")
        return EXIT_FAILURE
    sys.stdout.write(json.dumps(health, indent=2 if args.pretty else None) + "\n")
    return EXIT_OK


def register(sub: Any) -> None:
    config = sub.add_parser("config", help="push a gateway's config (waits for the outcome) "
                                           "or get the running version")
    config.add_argument("action", choices=("push", "get"))
    config.add_argument("gateway")
    config.add_argument("file", nargs="?", help="the whole TOML config, for push")
    config.add_argument("--db", required=True, help="the serving head-end's database")
    config.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    config.add_argument("--prefix", default="mtr")
    config.add_argument("--state", default=".")
    config.add_argument("--key", help="head-end private key file")
    config.add_argument("--ttl", type=int, default=DEFAULT_TTL_S, help="seconds")
    config.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                        help="wait this long for the command's result (exit 3 after)")
    config.add_argument("--apply-timeout", type=float, default=0.0, metavar="S",
                        help="wait this long for applied / rolled back (default: the "
                             "gateway's healthy_within_s + 120)")
    config.add_argument("--no-wait", action="store_true", help="print the result only")
    config.set_defaults(func=cmd_config, healthy_within=0.0)
    health = sub.add_parser("health", help="the latest health record of a gateway")
    health.add_argument("gateway")
    health.add_argument("--db", required=True, help="an existing head-end database")
    health.add_argument("--pretty", action="store_true")
    health.set_defaults(func=cmd_health)
