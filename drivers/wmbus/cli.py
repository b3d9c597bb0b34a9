"""Sub-commands `gateway wmbus decode|listen|keys`: wireless M-Bus debugging and key management.

Registered by the gateway from the wmbus protocol plugin (drivers/wmbus/plugin.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.cliargs import non_negative_int
from drivers.cli_io import err as _err
from drivers.cli_io import out as _out
from drivers.errors import DriverError
from drivers.mbus.json_view import record_json, samples_json, series_json
from drivers.mbus.profiles import series_of
from drivers.plugin import PortOpener, SerialParams
from drivers.wmbus.billing import telegram_samples_with_billing
from drivers.wmbus.keys import KeyStore
from drivers.wmbus.receiver import DONGLE_BAUD, MeterConfig, WmbusReceiver
from drivers.wmbus.telegram import Telegram, TelegramDecoder

EXIT_OK = 0
EXIT_FAILURE = 1
DEFAULT_KEY_FILE = "/var/lib/gateway/wmbus.keys"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             open_port: PortOpener) -> None:
    wmbus = sub.add_parser("wmbus", help="wireless M-Bus: decode telegrams, listen, keys")
    commands = wmbus.add_subparsers(dest="wmbus_command", metavar="ACTION", required=True)

    decode = commands.add_parser("decode", help="decode one telegram (hex) and print JSON")
    decode.add_argument("telegram", help="frame from the L field, hex (CRCs present or not)")
    decode.add_argument("--key", help="AES-128 key, 32 hex digits")
    decode.set_defaults(func=cmd_decode)

    listen = commands.add_parser("listen", help="print telegrams as they arrive, as JSON lines")
    listen.add_argument("--port", required=True, help="serial device, by-id name or pty path")
    listen.add_argument("--dongle", choices=tuple(DONGLE_BAUD), default="im871a")
    listen.add_argument("--mode", default="C1+T1", help="link mode: S1, T1, C1 or C1+T1")
    listen.add_argument("--meter", action="append", default=[], help="meter id (repeatable)")
    listen.add_argument("--key-file", default=DEFAULT_KEY_FILE)
    listen.add_argument("--count", type=non_negative_int, default=0,
                        help="stop after N telegrams (0: until Ctrl-C)")
    listen.set_defaults(func=cmd_listen, port_opener=open_port)

    keys = commands.add_parser("keys", help="per-meter AES keys (the list shows ids only)")
    keys.add_argument("--key-file", default=DEFAULT_KEY_FILE)
    actions = keys.add_subparsers(dest="keys_command", metavar="KEYS_ACTION", required=True)
    add = actions.add_parser("add", help="add or replace a meter's key")
    add.add_argument("meter")
    add.add_argument("key", help="32 hex digits; '-' reads it from stdin (no shell history)")
    add.set_defaults(func=cmd_keys_add)
    remove = actions.add_parser("remove", help="remove a meter's key")
    remove.add_argument("meter")
    remove.set_defaults(func=cmd_keys_remove)
    listing = actions.add_parser("list", help="list the meter ids that have a key")
    listing.set_defaults(func=cmd_keys_list)


def telegram_json(telegram: Telegram) -> dict[str, Any]:
    """Link header, records and mapped readings of a decoded telegram."""
    document = telegram.header_json()
    document["records"] = [record_json(r) for r in telegram.records]
    document["samples"] = samples_json(telegram_samples_with_billing(telegram))
    document["series"] = [series_json(s) for s in series_of(telegram.records)]
    return document


def decode_hex(telegram_hex: str, key_hex: str | None) -> dict[str, Any]:
    """Decode one telegram; raises DriverError / ValueError with the reason."""
    key = _hex(key_hex, "--key") if key_hex else None
    if key is not None and len(key) != 16:
        raise ValueError("--key must be 32 hex digits (AES-128)")
    frame = _hex(telegram_hex.strip().replace(" ", ""), "telegram")
    return telegram_json(TelegramDecoder(lambda _meter: key).decode(frame))


def _hex(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        # the text is not echoed: a --key argument may be a real key
        raise ValueError(f"{what} must be hex digits (two per byte)") from None


def cmd_decode(args: argparse.Namespace) -> int:
    try:
        document = decode_hex(args.telegram, args.key)
    except (DriverError, ValueError) as exc:
        _err(json.dumps({"error": str(exc)}))
        return EXIT_FAILURE
    _out(json.dumps(document, indent=2))
    return EXIT_OK


def cmd_listen(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_listen(args))
    except DriverError as exc:  # PortUnavailable: the serial port is not there
        _err(json.dumps({"error": str(exc)}))
        return EXIT_FAILURE


def _port_factory(args: argparse.Namespace) -> Any:
    opener = args.port_opener(args.port)  # resolved now: a missing device fails at once
    params = SerialParams(args.port, DONGLE_BAUD[args.dongle])
    return lambda: opener(params)


async def _listen(args: argparse.Namespace) -> int:
    keys = KeyStore(args.key_file)
    meters: dict[str, MeterConfig | None] = {m.upper(): None for m in args.meter}
    receiver = WmbusReceiver(_port_factory(args), args.dongle, args.mode,
                             keys, meters)
    printed = 0
    try:
        async for telegram in receiver.telegrams():
            _out(json.dumps({
                "meter": telegram.meter, "ts_ms": telegram.ts_ms, "rssi_dbm": telegram.rssi_dbm,
                "manufacturer": telegram.manufacturer, "device_type": telegram.device_type,
                "samples": [{"quantity": s.quantity, "value": str(s.value), "unit": s.unit}
                            for s in telegram.samples],
            }))
            printed += 1
            if args.count and printed >= args.count:
                break
    finally:
        await receiver.close()
        _err(json.dumps({"unknown_meters": [h.meter for h in receiver.unknown_meters()],
                          "counters": receiver.counters()}))
    return EXIT_OK


def cmd_keys_add(args: argparse.Namespace) -> int:
    key = sys.stdin.readline().strip() if args.key == "-" else args.key
    return _keys_action(args.key_file, lambda store: store.add(args.meter, key),
                        f"key stored for {args.meter}")


def cmd_keys_remove(args: argparse.Namespace) -> int:
    return _keys_action(args.key_file,
                        lambda store: _remove(store, args.meter),
                        f"key removed for {args.meter}")


def _remove(store: KeyStore, meter: str) -> None:
    if not store.remove(meter):
        raise DriverError(f"no key for meter {meter}")


def cmd_keys_list(args: argparse.Namespace) -> int:
    return _keys_action(args.key_file, lambda store: store.ids(),
                        lambda ids: json.dumps({"key_file": str(Path(args.key_file)),
                                                "meters": ids}))


def _keys_action(key_file: str, action: Callable[[KeyStore], Any],
                 done: str | Callable[[Any], str]) -> int:
    try:
        result = action(KeyStore(key_file))
    except DriverError as exc:
        _err(str(exc))
        return EXIT_FAILURE
    except (OSError, UnicodeDecodeError) as exc:  # a directory, a binary file, no permission
        _err(f"key file {key_file}: cannot use it: {_reason(exc)}")
        return EXIT_FAILURE
    _out(done(result) if callable(done) else done)
    return EXIT_OK


def _reason(exc: OSError | UnicodeDecodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not a text file"
    return f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc)
