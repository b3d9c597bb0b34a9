"""Sub-commands `gateway iec102 read` and `gateway iec102 profile --from --to`: one session with
a meter on a serial port (opened through the board's opener) or over TCP, printed as JSON."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from typing import Any
from zoneinfo import ZoneInfo

from core.cliargs import positive_seconds
from drivers.errors import DriverError, PortUnavailable
from drivers.iec102.decode import body_json
from drivers.iec102.reader import Iec102Reader, MeterOptions
from drivers.iec102.session import RECORD_HOURLY, RECORD_QUARTER_HOURLY, Session
from drivers.iec102.timetags import TimeA
from drivers.plugin import PortOpener, SerialParams
from drivers.readings import Sample
from drivers.transport.serial import SerialStream, take_descriptor
from drivers.transport.stream import ByteStream, LineSettings
from drivers.transport.tcp import TcpStream

EXIT_OK = 0
EXIT_FAILED = 1    # the meter did not answer, refused, or answered garbage
EXIT_USAGE = 2
DEFAULT_TIMEOUT_S = 2.0
CONNECT_TIMEOUT_S = 10.0


def add_commands(commands: Any, open_port: PortOpener, default_zone: str) -> None:
    read = commands.add_parser("read", help="read one meter once (clock, totals, tariffs)")
    _line_args(read, open_port, default_zone)
    read.set_defaults(func=cmd_read)
    profile = commands.add_parser("profile", help="the load profile between two times")
    _line_args(profile, open_port, default_zone)
    profile.add_argument("--from", dest="start", required=True, type=dt.datetime.fromisoformat,
                         help="meter wall time, ISO 8601 (2026-12-01T00:00)")
    profile.add_argument("--to", dest="end", required=True, type=dt.datetime.fromisoformat)
    profile.add_argument("--quarter-hourly", action="store_true", help="record 12, not 11")
    profile.add_argument("--incremental", action="store_true", help="increments (M_IT_TK_2)")
    profile.set_defaults(func=cmd_profile)


def _line_args(parser: argparse.ArgumentParser, open_port: PortOpener, zone: str) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="serial device, by-id name or pty path")
    where.add_argument("--host", help="serial server or modem on TCP")
    parser.add_argument("--tcp-port", type=int, default=2000)
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--link-address", type=int, required=True)
    parser.add_argument("--measuring-point", type=int, default=1)
    parser.add_argument("--password", type=int, required=True)
    parser.add_argument("--contract", type=int, default=1, choices=(1, 2, 3))
    parser.add_argument("--tz", default=zone)
    parser.add_argument("--timeout", type=positive_seconds, default=DEFAULT_TIMEOUT_S,
                        metavar="S", help="answer timeout")
    parser.set_defaults(port_opener=open_port)


def _reader(args: argparse.Namespace) -> Iec102Reader:
    if args.host:
        async def open_tcp() -> ByteStream:
            return await TcpStream.connect(args.host, args.tcp_port, protocol="iec102",
                                           timeout_s=CONNECT_TIMEOUT_S)
        return Iec102Reader(open_tcp, name=f"{args.host}:{args.tcp_port}")
    opener = args.port_opener(args.port)   # resolved now: a missing device fails at once

    async def open_serial() -> ByteStream:
        fd = take_descriptor(opener(SerialParams(args.port, args.baud)))
        return SerialStream(fd, LineSettings(args.baud), name=args.port, protocol="iec102")
    return Iec102Reader(open_serial, name=args.port)


def _options(args: argparse.Namespace, record: int = RECORD_HOURLY) -> MeterOptions:
    return MeterOptions(args.link_address, args.measuring_point, args.password, args.contract,
                        record, args.tz)


def _run(args: argparse.Namespace, work: Any) -> int:
    try:
        document = asyncio.run(work)
    except PortUnavailable as exc:
        sys.stderr.write(f"iec102: {exc}\n")
        return EXIT_USAGE
    except DriverError as exc:
        sys.stderr.write(f"iec102: {exc}\n")
        return EXIT_FAILED
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=True) + "\n")
    return EXIT_OK


def cmd_read(args: argparse.Namespace) -> int:
    async def work() -> Any:
        samples = await _reader(args).read("cli", _options(args), args.timeout)
        return {"samples": [_sample_json(s) for s in samples]}
    return _run(args, work())


def cmd_profile(args: argparse.Namespace) -> int:
    record = RECORD_QUARTER_HOURLY if args.quarter_hourly else RECORD_HOURLY
    zone = ZoneInfo(args.tz)

    async def periods(session: Session) -> Any:
        totals = await session.read_totals(record, TimeA.of(args.start), TimeA.of(args.end),
                                           incremental=args.incremental)
        return [item for body in totals for item in body_json(body, zone)]

    async def work() -> Any:
        rows = await _reader(args).run("cli", _options(args, record), args.timeout, periods)
        return {"record": record, "incremental": args.incremental, "totals": rows}
    return _run(args, work())


def _sample_json(sample: Sample) -> dict[str, str | int]:
    """A value read now, or a record with its instant (UTC ms) and series."""
    out: dict[str, str | int] = {"quantity": sample.quantity, "value": str(sample.value),
                                 "unit": sample.unit}
    if sample.at_ms is not None:
        out.update(at_ms=sample.at_ms, series=sample.series)
    return out
