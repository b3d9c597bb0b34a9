"""`gateway-headend release publish BUNDLE_DIR --key RELEASE_KEY` (docs/update.md): the signed
manifest of a directory of wheels, written beside them as manifest.cose."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

from uplink.headend.command import CommandRequest, CommandTimeout, send_and_wait
from uplink.headend.release_serve import cmd_release_serve
from uplink.headend.remote_records import RemoteRecords
from uplink.headend.usage import EXIT_FAILURE, EXIT_OK, EXIT_TIMEOUT, HeadendUsageError
from uplink.keys import HEADEND_KEY_FILE, load_private_key
from uplink.release import MANIFEST_FILE, BundleError, atomic_bytes, build_manifest, sign_manifest

OUTCOME_POLL_S = 0.5
DEFAULT_APPLY_TIMEOUT_S = 1800.0  # a 64 MiB bundle at the default rate, the install, probation
_GATEWAY_WHEEL = re.compile(r"^meter_gateway-([0-9.]+)-")


def wheel_version(directory: Path) -> str:
    """The version in the gateway wheel's file name (meter_gateway-0.2.0-py3-none-any.whl)."""
    for path in sorted(directory.glob("*.whl")):
        found = _GATEWAY_WHEEL.match(path.name)
        if found:
            return found.group(1)
    raise HeadendUsageError(f"{directory}: no meter_gateway-*.whl (give --version)")


def cmd_release(args: argparse.Namespace) -> int:
    if args.action == "serve":
        return cmd_release_serve(args)
    if not args.key:
        raise HeadendUsageError("release publish needs --key RELEASE_KEY")
    directory = Path(args.bundle)
    if not directory.is_dir():
        raise HeadendUsageError(f"{directory}: not a directory of wheels")
    version = args.version or wheel_version(directory)
    try:
        manifest = build_manifest(directory, version, args.min_version or "0")
    except BundleError as exc:
        raise HeadendUsageError(str(exc)) from None
    signed = sign_manifest(manifest, load_private_key(Path(args.key)))
    atomic_bytes(directory / MANIFEST_FILE, signed)
    summary = {"version": manifest.version, "min_version": manifest.min_version,
               "wheels": len(manifest.wheels), "bytes": manifest.total_size,
               "manifest": str(directory / MANIFEST_FILE)}
    sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    return EXIT_OK


def cmd_update(args: argparse.Namespace) -> int:
    """Send `update.offer`, print its result, then (unless --no-wait) the event that ends it."""
    request = CommandRequest(args.broker, args.prefix, args.gateway, "update.offer",
                             {"version": args.version}, args.ttl)
    key = load_private_key(Path(args.key) if args.key else Path(args.state) / HEADEND_KEY_FILE)
    records = RemoteRecords(args.db)
    try:
        after = records.mark()
        try:
            result = asyncio.run(send_and_wait(request, key, args.db, args.timeout))
        except CommandTimeout as exc:
            sys.stderr.write(f"gateway-headend update: {exc}\n")
            return EXIT_TIMEOUT
        sys.stdout.write(result.as_json() + "\n")
        if not result.ok or args.no_wait:
            return EXIT_OK if result.ok else EXIT_FAILURE
        return asyncio.run(_wait_outcome(records, args.gateway, args.version, after,
                                         args.apply_timeout))
    finally:
        records.close()


async def _wait_outcome(records: RemoteRecords, gw: str, version: str, after: int,
                        timeout_s: float) -> int:
    try:
        async with asyncio.timeout(timeout_s):
            while (outcome := records.update_outcome(gw, version, after)) is None:
                await asyncio.sleep(OUTCOME_POLL_S)
    except TimeoutError:
        sys.stderr.write(f"gateway-headend update: no update_applied, update_rolled_back or "
                         f"update_refused from {gw} within {timeout_s:g} s\n")
        return EXIT_TIMEOUT
    sys.stdout.write(json.dumps(outcome, separators=(",", ":")) + "\n")
    return EXIT_OK if outcome["event"] == "update_applied" else EXIT_FAILURE


def register(sub: Any) -> None:
    release = sub.add_parser("release", help="sign an update bundle (a directory of wheels) "
                                             "with the release key")
    release.add_argument("action", choices=("publish", "serve"))
    release.add_argument("bundle", metavar="DIR",
                         help="publish: the meter_gateway wheel and its pinned dependencies as "
                              "wheels; serve: the releases, one published bundle per version "
                              "(DIR/<version>/)")
    release.add_argument("--key", help="publish: the RELEASE private key (PEM; not the "
                                       "head-end command key)")
    release.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    release.add_argument("--prefix", default="mtr")
    release.add_argument("--version", help="default: from the meter_gateway wheel's name")
    release.add_argument("--min-version", help="the oldest version it may replace (default 0)")
    release.set_defaults(func=cmd_release)
    update = sub.add_parser("update", help="offer a published release to a gateway "
                                           "(signed update.offer)")
    update.add_argument("gateway")
    update.add_argument("version")
    update.add_argument("--db", required=True, help="the serving head-end's database")
    update.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    update.add_argument("--prefix", default="mtr")
    update.add_argument("--state", default=".")
    update.add_argument("--key", help="head-end private key file (the command key)")
    update.add_argument("--ttl", type=int, default=300, help="seconds")
    update.add_argument("--timeout", type=float, default=60.0, metavar="S",
                        help="wait this long for the result (exit 3 after)")
    update.add_argument("--apply-timeout", type=float, default=DEFAULT_APPLY_TIMEOUT_S,
                        metavar="S", help="wait this long for applied / rolled back / refused "
                                          "(download, install and probation; exit 3 after)")
    update.add_argument("--no-wait", action="store_true", help="print the result only")
    update.set_defaults(func=cmd_update)
