"""Sub-commands `gateway dlms decode|read`: decode captured DLMS frames, read a meter once.

Registered by the gateway from the dlms protocol plugin (drivers/dlms/plugin.py). Output is
JSON on stdout; errors are `{"error": ...}` on stderr (exit 1), a port that is not there exit 2.
Keys given on the command line are never echoed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Final, TypeVar

from core.cliargs import positive_seconds
from drivers.dlms.client import Association
from drivers.dlms.cosem import (
    CLOCK,
    DISCONNECT_CONTROL,
    REGISTER,
    ObjectValue,
    ScalerUnit,
    clock_time,
    disconnect_state,
    obis_bytes,
    plain_value,
    register_value,
)
from drivers.dlms.decode import decode
from drivers.dlms.links import DEFAULT_SERVER
from drivers.errors import DriverError, PortUnavailable
from drivers.plugin import PortOpener, SerialParams

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
DEFAULT_COUNTER_FILE: Final = "/var/lib/gateway/dlms-counters.json"
T = TypeVar("T")
KNOWN_CLASSES: Final = {"0-0:1.0.0.255": CLOCK, "0-0:96.3.10.255": DISCONNECT_CONTROL}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             open_port: PortOpener) -> None:
    dlms = sub.add_parser("dlms", help="DLMS/COSEM: decode frames, read a meter")
    commands = dlms.add_subparsers(dest="dlms_command", metavar="ACTION", required=True)

    dec = commands.add_parser("decode", help="decode one message's frames (hex) as JSON")
    dec.add_argument("frames", nargs="+", metavar="FRAME_HEX",
                     help="HDLC frames in order, a wrapper PDU, M-Bus segments or an APDU")
    dec.add_argument("--key", help="global unicast encryption key, 32 hex digits")
    dec.add_argument("--auth-key", help="authentication key, 32 hex digits")
    dec.add_argument("--system-title", help="the sender's system title (service-specific "
                                            "ciphering), 16 hex digits")
    dec.add_argument("--profile", help="push list profile (kaifa, kamstrup, aidon)")
    dec.set_defaults(func=cmd_decode)

    read = commands.add_parser("read", help="read OBIS objects of one meter once, as JSON")
    _connection_args(read)
    read.add_argument("objects", nargs="+", metavar="OBIS",
                      help="A-B:C.D.E.F (register, clock, disconnector) or CLASS/OBIS/ATTR")
    read.set_defaults(func=cmd_read, port_opener=open_port)

    profile = commands.add_parser("profile", help="read a profile generic by range, as JSON")
    _connection_args(profile)
    profile.add_argument("--obis", default="1-0:99.1.0.255", help="the profile (load profile)")
    profile.add_argument("--from", dest="start", required=True, type=_meter_time,
                         help="first row, meter time (2026-01-01T00:00)")
    profile.add_argument("--to", dest="end", required=True, type=_meter_time,
                         help="last row, meter time")
    profile.set_defaults(func=cmd_profile, port_opener=open_port)


def _meter_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date-time") from None


def _connection_args(read: argparse.ArgumentParser) -> None:
    where = read.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="serial device (HDLC), by-id name or pty path")
    where.add_argument("--host", help="meter or concentrator (TCP wrapper)")
    read.add_argument("--tcp-port", type=int, default=4059)
    read.add_argument("--baud", type=int, default=9600)
    read.add_argument("--client", type=int, default=16, help="client SAP / wPort")
    read.add_argument("--logical-device", type=int, default=DEFAULT_SERVER.upper)
    read.add_argument("--physical", type=int, default=DEFAULT_SERVER.lower,
                      help="physical device address (lower HDLC address)")
    read.add_argument("--address-size", type=int, default=2, choices=(1, 2, 4))
    read.add_argument("--auth", default="none", choices=("none", "lls", "hls_gmac"))
    read.add_argument("--password", help="LLS password")
    read.add_argument("--key", help="encryption key (HLS-GMAC / ciphering), 32 hex digits")
    read.add_argument("--auth-key", help="authentication key, 32 hex digits")
    read.add_argument("--plain", action="store_true", help="HLS-GMAC without ciphering")
    read.add_argument("--counter-file", default=DEFAULT_COUNTER_FILE,
                      help="invocation counters (share the gateway's: never reuse one)")
    read.add_argument("--meter", default="cli", help="the meter id the counters are kept under")
    read.add_argument("--timeout", type=positive_seconds, default=3.0, metavar="S")


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


def cmd_decode(args: argparse.Namespace) -> int:
    try:
        document = decode(args.frames, key=args.key, auth_key=args.auth_key,
                          profile=args.profile, system_title=args.system_title)
    except DriverError as exc:
        _err(json.dumps({"error": str(exc)}))
        return EXIT_FAILURE
    _out(json.dumps(document, indent=2))
    return EXIT_OK


def parse_object(spec: str) -> tuple[int, str, int | None]:
    """`1-0:1.8.0.255` (class by code: clock, disconnector, else register) or `3/OBIS/2`."""
    parts = spec.split("/")
    if len(parts) == 3 and parts[0].isdigit() and parts[2].isdigit():
        obis_bytes(parts[1])
        return int(parts[0]), parts[1], int(parts[2])
    if len(parts) != 1:
        raise ValueError(f"{spec!r} is not OBIS nor CLASS/OBIS/ATTR")
    obis_bytes(spec)
    return KNOWN_CLASSES.get(spec, REGISTER), spec, None


async def read_specs(association: Association,
                     specs: list[tuple[int, str, int | None]]) -> list[ObjectValue]:
    out = []
    for class_id, code, index in specs:
        raw = obis_bytes(code)
        if index is not None:
            out.append(ObjectValue(code, plain_value(await association.get(class_id, raw,
                                                                           index))))
        elif class_id == CLOCK:
            out.append(ObjectValue(code, clock_time(await association.get(CLOCK, raw, 2)).text()))
        elif class_id == DISCONNECT_CONTROL:
            out.append(ObjectValue(code, disconnect_state(await association.get(class_id, raw,
                                                                                3))))
        else:
            scaler = ScalerUnit.from_data(await association.get(REGISTER, raw, 3))
            out.append(register_value(code, await association.get(REGISTER, raw, 2), scaler))
    return out


async def _read(args: argparse.Namespace, work: Callable[[Association], Awaitable[T]]) -> T:
    from drivers.dlms.counters import CounterFile
    from drivers.dlms.keys import Secrets
    from drivers.dlms.read_profiles import read_profile
    from drivers.dlms.reader import DlmsBus, MeterSettings, meter_credentials

    secrets = Secrets(_hex(args.key, "--key"), _hex(args.auth_key, "--auth-key"),
                      args.password.encode() if args.password else None)
    creds = meter_credentials({"authentication": args.auth,
                         "ciphered": False if args.plain else None}, secrets, "command line")
    counters = CounterFile(args.counter_file)
    if args.port:
        bus = DlmsBus(counters, open_line=_line(args))
    else:
        bus = DlmsBus(counters, open_tcp=_tcp(args))
    meter = MeterSettings(args.meter, creds, read_profile("generic"), args.client, args.physical,
                          args.logical_device, args.address_size, args.timeout)
    try:
        return await bus.run(meter, work)
    finally:
        await bus.close()


def _line(args: argparse.Namespace) -> Any:
    from drivers.transport.serial import SerialStream, take_descriptor
    from drivers.transport.stream import LineSettings

    opener = args.port_opener(args.port)  # resolved now: a missing device fails at once
    return lambda: SerialStream(take_descriptor(opener(SerialParams(args.port, args.baud))),
                                LineSettings(args.baud), name=args.port, protocol="dlms")


def _tcp(args: argparse.Namespace) -> Any:
    from drivers.transport.tcp import TcpStream

    async def connect(timeout_s: float) -> Any:
        return await TcpStream.connect(args.host, args.tcp_port, protocol="dlms",
                                       timeout_s=timeout_s)
    return connect


def _hex(text: str | None, what: str) -> bytes | None:
    if not text:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{what} must be hex digits (two per byte)") from None  # not echoed


def cmd_read(args: argparse.Namespace) -> int:
    try:
        specs = [parse_object(s) for s in args.objects]
        objects = asyncio.run(_read(args, lambda a: read_specs(a, specs)))
    except PortUnavailable as exc:
        _err(json.dumps({"error": str(exc)}))
        return EXIT_USAGE
    except (DriverError, ValueError) as exc:
        _err(json.dumps({"error": str(exc)}))
        return EXIT_FAILURE
    _out(json.dumps({"objects": [o.to_json() for o in objects]}, indent=2))
    return EXIT_OK


def cmd_profile(args: argparse.Namespace) -> int:
    from drivers.dlms.profile_read import read_range

    try:
        obis_bytes(args.obis)
        read = asyncio.run(_read(args, lambda a: read_range(a, args.obis, args.start, args.end)))
    except PortUnavailable as exc:
        _err(json.dumps({"error": str(exc)}))
        return EXIT_USAGE
    except (DriverError, ValueError) as exc:
        _err(json.dumps({"error": str(exc)}))
        return EXIT_FAILURE
    _out(json.dumps({"profile": args.obis, "rows": [
        {"time": row.when_text, "values": [v.to_json() for v in row.values]}
        for row in read.rows]}, indent=2))
    return EXIT_OK
