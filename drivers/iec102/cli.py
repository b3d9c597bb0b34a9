"""Sub-commands `gateway iec102 decode FRAME_HEX` (one frame as JSON), `read` and `profile`
(drivers/iec102/cli_read.py).

Registered by the gateway from the iec102 protocol plugin (drivers/iec102/plugin.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drivers.errors import FrameError
from drivers.iec102.decode import decode_frame
from drivers.plugin import PortOpener

EXIT_OK = 0
EXIT_DAMAGED = 1   # not one frame: bad checksum, length, layout
EXIT_USAGE = 2
DEFAULT_ZONE = "Europe/Madrid"   # REE meters keep Spanish peninsular time


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             open_port: PortOpener) -> None:
    iec = sub.add_parser("iec102", help="IEC 60870-5-102 (REE profile) billing meters")
    commands = iec.add_subparsers(dest="iec102_command", metavar="ACTION", required=True)
    decode = commands.add_parser("decode", help="print one frame as JSON")
    decode.add_argument("frame", help="the frame in hex (spaces and colons allowed)")
    decode.add_argument("--tz", default=DEFAULT_ZONE,
                        help=f"the site time zone for the meter's times (default {DEFAULT_ZONE})")
    decode.set_defaults(func=cmd_decode)
    from drivers.iec102.cli_read import add_commands

    add_commands(commands, open_port, DEFAULT_ZONE)


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", " ").replace(" ", ""))


def cmd_decode(args: argparse.Namespace) -> int:
    try:
        zone = ZoneInfo(args.tz)
    except (ZoneInfoNotFoundError, ValueError):
        sys.stderr.write(f"iec102 decode: unknown time zone {args.tz!r}\n")
        return EXIT_USAGE
    try:
        data = _hex(args.frame)
    except ValueError:
        sys.stderr.write("iec102 decode: FRAME_HEX is not hex\n")
        return EXIT_USAGE
    try:
        document: dict[str, Any] = decode_frame(data, zone)
    except FrameError as exc:
        sys.stderr.write(f"iec102 decode: {exc}\n")
        return EXIT_DAMAGED
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=True) + "\n")
    return EXIT_OK
