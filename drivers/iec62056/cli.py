"""Sub-commands `gateway iec62056 parse FILE` and `gateway iec62056 read --port P`.

Registered by the gateway from the iec62056 protocol plugin (drivers/iec62056/plugin.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from core.cliargs import positive_seconds
from drivers.errors import DriverError, PortUnavailable
from drivers.iec62056.mapping import map_datasets
from drivers.iec62056.p1 import map_telegram
from drivers.iec62056.reader import Iec62056Bus, ReadResult
from drivers.iec62056.readout import Readout, decode_message
from drivers.plugin import PortOpener, SerialParams
from drivers.readings import Sample

EXIT_OK = 0
EXIT_DAMAGED = 1  # the frame's BCC/CRC or structure is wrong, or the meter did not answer
EXIT_USAGE = 2
# A whole readout at 300 baud can take minutes (3 kB at 30 characters a second).
DEFAULT_READ_TIMEOUT_S = 300.0
# The baud rates of IEC 62056-21 mode C (as in the config's `max_baud`).
MAX_BAUDS = (300, 600, 1200, 2400, 4800, 9600, 19200)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             open_port: PortOpener) -> None:
    iec = sub.add_parser("iec62056", help="IEC 62056-21 optical meters and DSMR P1 telegrams")
    commands = iec.add_subparsers(dest="iec_command", metavar="ACTION", required=True)

    parse = commands.add_parser("parse", help="print a readout or telegram file as JSON")
    parse.add_argument("file", help="raw bytes as received (identification line included)")
    parse.set_defaults(func=cmd_parse)

    read = commands.add_parser("read", help="read one meter once and print it as JSON")
    read.add_argument("--port", required=True, help="serial device, by-id name or pty path")
    read.add_argument("--address", default="", help="device address (RS-485 bus)")
    read.add_argument("--mode", default="C", choices=("A", "B", "C"))
    read.add_argument("--max-baud", type=int, default=9600, choices=MAX_BAUDS)
    read.add_argument("--password", default="")
    read.add_argument("--obis", action="append", default=[],
                      help="read this OBIS code in programming mode (repeatable)")
    read.add_argument("--echo", action="store_true", help="the probe echoes what it sends")
    read.add_argument("--timeout", type=positive_seconds, default=DEFAULT_READ_TIMEOUT_S,
                      metavar="S")
    read.set_defaults(func=cmd_read, port_opener=open_port)


def _samples_json(samples: list[Sample]) -> list[dict[str, str]]:
    return [{"quantity": s.quantity, "value": str(s.value), "unit": s.unit} for s in samples]


def readout_json(readout: Readout) -> dict[str, Any]:
    """The readout as printed: identification, datasets, checksum verdict, problems, samples;
    a DSMR telegram (CRC16) adds its M-Bus sub-meters, mapped as the P1 port maps them."""
    document = readout.to_json_dict()
    if readout.checksum_kind == "crc16":
        mapped, submeters, refused = map_telegram(readout)
        document["submeters"] = [
            {"channel": s.channel, "captured_utc": s.captured_utc.isoformat(), "dst": s.dst,
             "device_type": s.device_type, "samples": _samples_json(list(s.samples))}
            for s in submeters]
    else:
        mapped = map_datasets(readout.datasets)
        refused = mapped.errors
    document["samples"] = _samples_json(mapped.samples)
    document["max_demand_time"] = mapped.max_demand_time
    document["refused"] = [str(error) for error in refused]
    return document


def _print(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=True) + "\n")


def cmd_parse(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        sys.stderr.write(f"{path}: cannot read: {exc.strerror}\n")
        return EXIT_USAGE
    readout = decode_message(raw)
    _print(readout_json(readout))
    try:
        readout.raise_if_damaged(str(path))
    except DriverError as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_DAMAGED
    return EXIT_OK


def result_json(result: ReadResult) -> dict[str, Any]:
    document: dict[str, Any] = readout_json(result.readout) if result.readout else {
        "identification": None if result.identification is None else {
            "manufacturer": result.identification.manufacturer,
            "baud_char": result.identification.baud_char,
            "enhanced": result.identification.enhanced,
            "model": result.identification.model,
        },
        "samples": _samples_json(result.samples),
        "register_errors": result.register_errors,
    }
    document["baud"] = result.baud
    document["clock_drift_s"] = result.clock_drift_s
    return document


async def _read_once(args: argparse.Namespace) -> ReadResult:
    opener = args.port_opener(args.port)  # resolved now: a missing device fails at once
    bus = Iec62056Bus(lambda baud: opener(SerialParams(args.port, baud, bytesize=7, parity="E")),
                      echo=args.echo, name=args.port)
    options: dict[str, Any] = {"mode": args.mode, "max_baud": args.max_baud,
                               "password": args.password, "obis": args.obis}
    try:
        return await bus.read("cli", args.address, options, args.timeout)
    finally:
        await bus.close()


def cmd_read(args: argparse.Namespace) -> int:
    try:
        result = asyncio.run(_read_once(args))
    except PortUnavailable as exc:  # no such device, busy, refused: the --port is wrong
        sys.stderr.write(f"{args.port}: {exc}\n")
        return EXIT_USAGE
    except DriverError as exc:
        sys.stderr.write(f"{args.port}: {exc}\n")
        return EXIT_DAMAGED
    _print(result_json(result))
    return EXIT_OK
