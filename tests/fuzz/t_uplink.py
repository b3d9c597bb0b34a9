"""Signed messages from the broker and the stick: acks, commands (on into their handlers),
head-end batches and USB vouchers. Flag bit 0 makes the harness sign the body with the valid
key, so the decoder behind the signature is reached; bit 1 wraps a raw CBOR field into an
otherwise valid payload (the records array, the command args, the voucher amount)."""

from __future__ import annotations

import importlib
import tempfile
import zlib
from collections.abc import Callable, Coroutine
from datetime import UTC
from decimal import Decimal
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Final

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.wiring.prepay import voucher_verifier
from prepay.commands import PrepayCommands
from prepay.vouchers import build_voucher_payload, parse_payload
from tests.fuzz.harness import Target
from uplink.codec import (
    Ack,
    Command,
    WireRecord,
    decode_ack,
    encode_ack,
    encode_batch_payload,
    encode_batch_payload_raw,
    encode_command,
    reading_fields,
)
from uplink.commands import CommandContext, CommandRegistry, screen_command
from uplink.cose import parse_sign1, sign1, verify_sign1
from uplink.headend.store import record_body_json
from uplink.headend.verify import verify_batch
from uplink.keys import public_pem
from uplink.service import MAX_ACK_BYTES

SIGN: Final = 0x01
WRAP: Final = 0x02
COMPRESS: Final = 0x04
GW: Final = "gw-fuzz-01"
NOW: Final = 1_800_000_000
SERVER_KEY: Final = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
GATEWAY_KEY: Final = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
VOUCHER_KEY: Final = Ed25519PrivateKey.from_private_bytes(bytes(range(2, 34)))
VOUCHER_KID: Final = "utility-1"
TOKENS: Final = (
    cbor2.dumps("9" * 60), cbor2.dumps("1E+999999"), cbor2.dumps("-0"), cbor2.dumps("NaN"),
    cbor2.dumps(2**64), cbor2.dumps(-(2**64)), cbor2.dumps(10**40), cbor2.dumps(1.5),
    cbor2.dumps(b"NaN"), cbor2.dumps([]), cbor2.dumps({}), cbor2.dumps(None), b"\x9f", b"\xbf",
    b"\xff", b"\xd8\x12", b"\xc4\x82", b"\xc5\x82", b"\x1b" + b"\xff" * 8, b"\x5b" + b"\x7f" * 8,
    cbor2.dumps("amount"), cbor2.dumps("recs"), cbor2.dumps("v"), cbor2.dumps("args"),
)
OPS: Final = ("ping", "credit.topup", "relay.set", "prepay.mode", "prepay.limit", "tariff.set",
              "emergency.activate", "wmbus.key.set", "wmbus.key.remove", "status")


def _map_with_raw(fields: dict[str, Any], key: str, raw: bytes) -> bytes:
    """A CBOR map of `fields` plus `key` whose value is the raw (possibly broken) item."""
    head = cbor2.dumps(fields)
    return bytes([0xA0 | (len(fields) + 1)]) + head[1:] + cbor2.dumps(key) + raw


def _signed(data: bytes, key: Ed25519PrivateKey, kid: bytes, wrap: Callable[[bytes], bytes],
            ) -> bytes:
    flags, body = (data[0] if data else 0), data[1:]
    if flags & WRAP:
        body = wrap(body)
    return sign1(body, key, kid) if flags & (SIGN | WRAP) else body


# ---- acks ------------------------------------------------------------------------------

def ack_wire(data: bytes) -> bytes:
    return _signed(data, SERVER_KEY, b"headend", lambda b: b)


def run_ack(data: bytes) -> str:
    msg = parse_sign1(ack_wire(data), max_bytes=MAX_ACK_BYTES)
    ack = decode_ack(verify_sign1(msg, SERVER_KEY.public_key()))
    return "ack" if ack.ack >= 0 and (ack.resend is None or ack.resend <= 2**63) else "odd"


def _ack_seeds() -> list[bytes]:
    acks = [Ack(GW, 12), Ack(GW, 3, 1), Ack("other", 1 << 40, None)]
    return [bytes([SIGN]) + encode_ack(a) for a in acks] + [
        b"\x00" + sign1(encode_ack(acks[0]), SERVER_KEY, b"headend")]


# ---- commands --------------------------------------------------------------------------

class _ReachedStore(Exception):
    """The handler validated its arguments and opened a store transaction: accepted."""


def _transaction() -> Any:
    raise _ReachedStore


@cache
def _registry() -> CommandRegistry:
    meter = SimpleNamespace(meter_id="m1")
    engine = SimpleNamespace(
        settings=SimpleNamespace(meters={"m1": meter}, currency="EUR", emergency_credit=50000),
        store=SimpleNamespace(transaction=_transaction), clock=lambda: NOW * 1000,
        book=SimpleNamespace(tz=UTC))
    registry = CommandRegistry()
    for op, handler in PrepayCommands(engine).handlers().items():  # type: ignore[arg-type]
        registry.register(op, handler)
    keys_dir = Path(tempfile.mkdtemp(prefix="fuzz-keys-"))
    from drivers.wmbus.keys import KeyStore
    source = SimpleNamespace(radio_ids={"w1": "12345678"}, keys=KeyStore(keys_dir / "keys"))
    service = SimpleNamespace(push_sources=[source])
    registry.register("wmbus.key.set", _key_handler(service, remove=False))
    registry.register("wmbus.key.remove", _key_handler(service, remove=True))
    return registry


def _key_handler(service: Any, *, remove: bool) -> Any:
    """The `wmbus.key.set|remove` handler, wherever the tree keeps it (it is moving into the
    wireless M-Bus plugin)."""
    try:
        factory = importlib.import_module("drivers.wmbus.plugin")._key_command(remove)
        return factory(lambda: service.push_sources)
    except (ImportError, AttributeError):
        wiring = importlib.import_module("gateway.wiring.uplink")
        return wiring._wmbus_key_command(service, remove=remove)


def _drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never waits (the handlers up to their store transaction)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("handler awaited something")


def _command_payload(body: bytes) -> bytes:
    op = OPS[body[0] % len(OPS)] if body else "ping"
    return _map_with_raw({"id": "c-1", "gw": GW, "exp": NOW + 60, "op": op}, "args", body[1:])


def command_wire(data: bytes) -> bytes:
    return _signed(data, SERVER_KEY, b"headend", _command_payload)


def run_command(data: bytes) -> str:
    screened = screen_command(command_wire(data), SERVER_KEY.public_key(), GW, NOW)
    if screened.reason is not None or screened.command is None:
        return f"refused:{screened.reason}"
    cmd = screened.command
    ctx = CommandContext(GW, cmd.id, cmd.op, NOW)
    try:
        _drive(_registry().run(cmd, ctx))
    except _ReachedStore:
        return "accepted"
    return "done"


def _command_seeds() -> list[bytes]:
    args: list[dict[str, Any]] = [
            {}, {"meter": "m1", "amount": "12.50", "txid": "t-1"}, {"meter": "m1", "state": "open"},
            {"meter": "m1", "mode": "automatic"}, {"meter": "m1", "warn_limit": "5"},
            {"tariff": "t1", "definition": {"currency": "EUR", "versions": [
                {"effective_from": "2026-01-01", "price": "0.2512"}]}, "meters": ["m1"]},
            {"meter": "m1"}, {"meter": "w1", "key": "00" * 16}, {"meter": "w1"}, {}]
    seeds = [bytes([WRAP, i]) + cbor2.dumps(a) for i, a in enumerate(args)]
    cmd = Command("c-2", GW, NOW + 60, "credit.topup", args[1])
    signed = sign1(encode_command(cmd), SERVER_KEY, b"headend")
    return [*seeds, bytes([SIGN]) + encode_command(cmd), b"\x00" + signed]


# ---- head-end batches ------------------------------------------------------------------

def _batch_payload(body: bytes, compress: bool) -> bytes:
    return encode_batch_payload_raw(GW, 7, bytes(32), NOW, body, compress=compress)


def batch_wire(data: bytes) -> bytes:
    flags = data[0] if data else 0
    return _signed(data, GATEWAY_KEY, GW.encode(),
                   lambda b: _batch_payload(b, bool(flags & COMPRESS)))


def run_batch(data: bytes) -> str:
    batch = verify_batch(batch_wire(data), {GW: GATEWAY_KEY.public_key()})
    for rec in batch.payload.records:
        record_body_json(rec)
    return f"records={min(len(batch.payload.records), 3)}"


def _batch_seeds() -> list[bytes]:
    values: list[tuple[str, Decimal | str]] = [
              ("import_active_energy", Decimal("1846.0")), ("voltage_l1", Decimal("230.1")),
              ("meter_datetime", "2026-11-23T17:00:00"), ("serial_number", "1234"),
              ("active_power", Decimal("-0")), ("current_l1", Decimal("1E+3"))]
    recs = [
        WireRecord("reading", 41, NOW * 1000, reading_fields("shop-12", values)),
        WireRecord("event", 42, NOW * 1000 + 5, {"e": "relay_opened", "m": "shop-12"}),
        WireRecord("ledger", 43, NOW * 1000 + 9, {"m": "shop-12", "credit": -1200}),
    ]
    items = [{"k": {"reading": 3, "event": 2, "ledger": 1}[r.kind], "id": r.id,
              "t": r.ts_ms - NOW * 1000, **r.fields} for r in recs]
    array = cbor2.dumps(items)
    plain = encode_batch_payload(GW, 7, bytes(32), NOW, items, compress=False)
    packed = encode_batch_payload(GW, 7, bytes(32), NOW, items, compress=True)
    return [bytes([WRAP]) + array, bytes([WRAP | COMPRESS]) + array, bytes([SIGN]) + plain,
            bytes([SIGN]) + packed, b"\x00" + sign1(plain, GATEWAY_KEY, GW.encode()),
            bytes([SIGN]) + _batch_payload(zlib.compress(b"\x80")[2:-4], False)]


# ---- vouchers --------------------------------------------------------------------------

@cache
def _voucher_verify() -> Callable[[bytes], tuple[str, bytes]]:
    folder = Path(tempfile.mkdtemp(prefix="fuzz-vouchers-"))
    path = folder / "utility-1.pem"
    path.write_text(public_pem(VOUCHER_KEY.public_key()))
    return voucher_verifier(SimpleNamespace(voucher_keys={VOUCHER_KID: path}))  # type: ignore[arg-type]


def _voucher_payload(amount_raw: bytes) -> bytes:
    fields = {"id": bytes(16), "gw": GW, "meter": "m1", "currency": "EUR", "exp": NOW + 86400}
    return _map_with_raw(fields, "amount", amount_raw)


def voucher_wire(data: bytes) -> bytes:
    return _signed(data, VOUCHER_KEY, VOUCHER_KID.encode(), _voucher_payload)


def run_voucher(data: bytes) -> str:
    kid, payload = _voucher_verify()(voucher_wire(data))
    voucher = parse_payload(payload, kid)
    return "valid" if voucher.amount > 0 else "zero"


def _voucher_seeds() -> list[bytes]:
    payload = build_voucher_payload(GW, "m1", "25.00", "EUR", NOW + 86400, bytes(16))
    return [bytes([SIGN]) + payload, b"\x00" + sign1(payload, VOUCHER_KEY, VOUCHER_KID.encode()),
            bytes([WRAP]) + cbor2.dumps("25.00"), bytes([WRAP]) + cbor2.dumps("0.0001"),
            bytes([WRAP]) + cbor2.dumps(12)]


TARGETS: Final = (
    Target("uplink_ack", _ack_seeds, run_ack, tokens=TOKENS, protect=1, weight=0.8,
           wire=ack_wire),
    Target("uplink_command", _command_seeds, run_command, tokens=TOKENS, protect=2, weight=1.0,
           wire=command_wire),
    Target("headend_batch", _batch_seeds, run_batch, tokens=TOKENS, protect=1, weight=1.0,
           wire=batch_wire),
    Target("voucher", _voucher_seeds, run_voucher, tokens=TOKENS, protect=1, weight=0.8,
           wire=voucher_wire),
)
