"""`gateway-headend release publish BUNDLE_DIR --key RELEASE_KEY` (docs/update.md): the signed
manifest of a directory of wheels, written beside them as manifest.cose."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from uplink.headend.usage import EXIT_OK, HeadendUsageError
from uplink.keys import load_private_key
from uplink.release import MANIFEST_FILE, BundleError, atomic_bytes, build_manifest, sign_manifest

_GATEWAY_WHEEL = re.compile(r"^meter_gateway-([0-9.]+)-")


def wheel_version(directory: Path) -> str:
    """The version in the gateway wheel's file name (meter_gateway-0.2.0-py3-none-any.whl)."""
    for path in sorted(directory.glob("*.whl")):
        found = _GATEWAY_WHEEL.match(path.name)
        if found:
            return found.group(1)
    raise HeadendUsageError(f"{directory}: no meter_gateway-*.whl (give --version)")


def cmd_release(args: argparse.Namespace) -> int:
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


def register(sub: Any) -> None:
    release = sub.add_parser("release", help="sign an update bundle (a directory of wheels) "
                                             "with the release key")
    release.add_argument("action", choices=("publish",))
    release.add_argument("bundle", metavar="BUNDLE_DIR",
                         help="the meter_gateway wheel and its pinned dependencies as wheels")
    release.add_argument("--key", required=True,
                         help="the RELEASE private key (PEM; not the head-end command key)")
    release.add_argument("--version", help="default: from the meter_gateway wheel's name")
    release.add_argument("--min-version", help="the oldest version it may replace (default 0)")
    release.set_defaults(func=cmd_release)
