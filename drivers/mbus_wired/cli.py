"""Sub-commands `gateway mbus scan|read|decode`: wired M-Bus from a technician's laptop.

Registered by the gateway from the mbus protocol plugin (drivers/mbus_wired/plugin.py). The
JSON of a telegram has the shape of `gateway wmbus decode`: the header (manufacturer, id,
version, device_type = the medium, access_number, status, and the wired link fields), its
records (storage, tariff, subunit, function, quantity, unit, exact value) and the samples the
gateway would store."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from drivers.cli_io import err as _err
from drivers.cli_io import out as _out
from drivers.errors import DriverError
from drivers.mbus.json_view import record_json, samples_json, series_json
from drivers.mbus.mapping import records_to_samples
from drivers.mbus.profiles import series_of
from drivers.mbus_wired.link import BAUD_RATES
from drivers.mbus_wired.meter_address import parse_meter_address, secondary_hex
from drivers.mbus_wired.readout import device_type, readout_samples
from drivers.mbus_wired.responses import FixedHeader, RspUd, ShortHeader, decode_rsp_ud
from drivers.plugin import PortOpener

EXIT_OK = 0
EXIT_FAILURE = 1
DEFAULT_BAUD = 2400


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             open_port: PortOpener) -> None:
    mbus = sub.add_parser("mbus", help="wired M-Bus: find meters, read one, decode a frame")
    commands = mbus.add_subparsers(dest="mbus_command", metavar="ACTION", required=True)

    scan = commands.add_parser("scan", help="find the meters on a bus (JSON lines)")
    _line_args(scan)
    scan.add_argument("--secondary", action="store_true",
                      help="secondary search (wildcard tree) instead of primary 0..250")
    scan.add_argument("--last", type=int, default=250, choices=range(0, 251), metavar="0-250",
                      help="the primary scan stops after this address")
    scan.set_defaults(func=cmd_scan, port_opener=open_port)

    read = commands.add_parser("read", help="read one meter (every telegram) and print JSON")
    _line_args(read)
    read.add_argument("--address", required=True,
                      help="primary 0-250 or secondary 16 hex digits (as scan prints)")
    read.set_defaults(func=cmd_read, port_opener=open_port)

    decode = commands.add_parser("decode", help="decode one RSP_UD frame (hex) and print JSON")
    decode.add_argument("frame", help="the long frame from 68 to 16, hex")
    decode.set_defaults(func=cmd_decode)


def _line_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", required=True, help="serial device, by-id name or pty path")
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUD, choices=BAUD_RATES)


def header_json(telegram: RspUd) -> dict[str, Any]:
    header = telegram.header
    fixed = header if isinstance(header, FixedHeader) else None
    document: dict[str, Any] = {
        "manufacturer": fixed.manufacturer_text if fixed else None,
        "id": fixed.id if fixed else None,
        "secondary_address": (secondary_hex(address) if fixed and
                              (address := fixed.secondary()) is not None else None),
        "version": fixed.version if fixed else None,
        "device_type": fixed.medium if fixed else None,
        "address": telegram.address, "c_field": telegram.control, "ci": telegram.ci,
        "access_number": header.access_number if header is not None else None,
        "status": header.status if header is not None else None,
        "more_records_follow": telegram.more_follow,
    }
    if isinstance(header, ShortHeader | FixedHeader):
        document["signature"] = header.signature
    return document


def telegram_json(telegram: RspUd) -> dict[str, Any]:
    """Header, records and mapped samples of one telegram."""
    document = header_json(telegram)
    document["records"] = [record_json(r) for r in telegram.records]
    document["samples"] = samples_json(
        records_to_samples(list(telegram.records), device_type([telegram])))
    document["series"] = [series_json(s) for s in series_of(list(telegram.records))]
    return document


def decode_hex(frame_hex: str) -> dict[str, Any]:
    """Decode one frame; raises DriverError / ValueError with the reason. Records the
    decoder cannot walk to the end stay as one "unparsed" record (shown, not refused)."""
    try:
        frame = bytes.fromhex(frame_hex.strip().replace(" ", ""))
    except ValueError:
        raise ValueError("the frame must be hex digits (two per byte)") from None
    return telegram_json(decode_rsp_ud(frame, strict=False))


def cmd_decode(args: argparse.Namespace) -> int:
    try:
        document = decode_hex(args.frame)
    except (DriverError, ValueError) as exc:
        _err(json.dumps({"error": str(exc)}))
        return EXIT_FAILURE
    _out(json.dumps(document, indent=2))
    return EXIT_OK


def _bus(args: argparse.Namespace) -> Any:
    from drivers.mbus_wired.bus import MbusBus, serial_params
    from drivers.transport.serial import SerialStream, take_descriptor
    from drivers.transport.stream import LineSettings

    opener = args.port_opener(args.port)   # resolved now: a missing device fails at once

    async def open_stream(baud: int) -> Any:
        return SerialStream(take_descriptor(opener(serial_params(args.port, baud))),
                            LineSettings(baud, 8, "E", 1), name=args.port, protocol="mbus")
    return MbusBus(open_stream, baud=args.baud, name=args.port)


def _run(args: argparse.Namespace, work: Any) -> int:
    async def run() -> int:
        bus = _bus(args)
        try:
            return int(await work(bus))
        finally:
            await bus.close()
    try:
        return asyncio.run(run())
    except (DriverError, ValueError) as exc:
        _err(json.dumps({"error": str(exc)}))
        return EXIT_FAILURE


def cmd_scan(args: argparse.Namespace) -> int:
    async def scan(bus: Any) -> int:
        if args.secondary:
            result = await bus.search()
            for meter in result.meters:
                _out(json.dumps({"address": secondary_hex(meter.address),
                                 "text": meter.address.text(), "primary": meter.primary}))
            _err(json.dumps({"found": len(result.meters), "probes": result.probes,
                             "collisions": result.collisions,
                             "unresolved": [p.id for p in result.unresolved]}))
            return EXIT_OK
        primary = await bus.scan_primary(range(0, args.last + 1))
        for address in primary.answered:
            _out(json.dumps({"address": address}))
        _err(json.dumps({"found": len(primary.answered), "garbled": primary.garbled}))
        return EXIT_OK
    return _run(args, scan)


def cmd_read(args: argparse.Namespace) -> int:
    try:
        address = parse_meter_address(args.address)
    except ValueError as exc:
        _err(json.dumps({"error": str(exc)}))
        return EXIT_FAILURE

    async def read(bus: Any) -> int:
        telegrams = await bus.read_address(address)
        samples, errors = readout_samples(telegrams)
        _out(json.dumps({
            "telegrams": [telegram_json(t) for t in telegrams],
            "samples": [{"quantity": s.quantity, "value": str(s.value), "unit": s.unit}
                        for s in samples],
            "errors": [str(e) for e in errors]}, indent=2))
        return EXIT_OK
    return _run(args, read)
