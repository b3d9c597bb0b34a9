"""Payload codec: batches, records, acks and commands as CBOR maps (see docs/uplink.md CDDL)."""

import decimal
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import cbor2

from uplink.cose import loads_strict
from uplink.errors import BadMessage
from uplink.quantity_codes import quantity_from_wire, quantity_to_wire

# Shifting a finite Decimal by its own exponent under this context never rounds: the mantissa
# comes out exact (as storage/codec.py encodes it).
EXACT: Final = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX,
                               Emin=decimal.MIN_EMIN)

FORMAT_VERSION: Final = 1
ZERO_HASH: Final = bytes(32)
# Kinds with a wire code (the outbox priority order); other kinds go as their name.
KIND_CODES: Final[dict[str, int]] = {"cmd_result": 0, "ledger": 1, "event": 2, "reading": 3}
KIND_NAMES: Final[dict[int, str]] = {code: name for name, code in KIND_CODES.items()}
# A compressed `recs` may not inflate beyond this: guards the head-end against zip bombs.
MAX_INFLATED_BYTES: Final = 16 * 1024 * 1024
RECORD_HEADER_KEYS: Final = frozenset({"k", "id", "t"})
VALUE_STRIDE: Final = 3

Value = Decimal | str


@dataclass(frozen=True, slots=True)
class WireRecord:
    """One record as it travels: kind, gateway-unique increasing id, time, kind's own fields."""

    kind: str
    id: int
    ts_ms: int
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BatchPayload:
    """The decoded payload of a batch."""

    gw: str
    seq: int
    prev: bytes
    t: int
    records: list[WireRecord]


@dataclass(frozen=True, slots=True)
class Ack:
    gw: str
    ack: int
    resend: int | None = None


@dataclass(frozen=True, slots=True)
class Unavailable:
    """The gateway no longer holds batches `first`..`last`; `sha256` is batch `last`'s hash
    (the `prev` of batch last + 1), so the chain can be checked across the gap."""

    gw: str
    first: int
    last: int
    sha256: bytes


@dataclass(frozen=True, slots=True)
class Command:
    id: str
    gw: str
    exp: int
    op: str
    args: dict[str, Any]


def reading_fields(meter: str, values: Iterable[tuple[str, Value]]) -> dict[str, Any]:
    """Kind fields of a reading record: meter id and a flat [q, mantissa, exp, ...] array."""
    flat: list[Any] = []
    for quantity, value in values:
        flat.append(quantity_to_wire(quantity))
        if isinstance(value, str):
            flat.extend((value, 0))
            continue
        sign, digits, exponent = value.as_tuple()
        if not isinstance(exponent, int) or (sign and not any(digits)):
            # NaN, Infinity and -0 have no (mantissa, exp) form: their Decimal text as bytes.
            flat.extend((str(value).encode("ascii"), 0))
            continue
        flat.extend((int(value.scaleb(-exponent, EXACT)), exponent))  # exact mantissa
    return {"m": meter, "v": flat}


def reading_values(fields: dict[str, Any]) -> list[tuple[str, Value]]:
    """Inverse of reading_fields for the `v` array; BadMessage on any malformed entry."""
    flat = fields.get("v")
    if not isinstance(flat, list) or len(flat) % VALUE_STRIDE:
        raise BadMessage("reading record: `v` is not an array of [q, mantissa, exp] triples")
    out: list[tuple[str, Value]] = []
    for pos in range(0, len(flat), VALUE_STRIDE):
        q, mantissa, exp = flat[pos:pos + VALUE_STRIDE]
        name = quantity_from_wire(q)
        if name is None or not _is_int(exp):
            raise BadMessage(f"reading record: bad quantity or exponent at value {pos // 3}")
        if isinstance(mantissa, str):
            out.append((name, mantissa))
        elif isinstance(mantissa, bytes):
            out.append((name, _special_decimal(mantissa, pos)))
        elif _is_int(mantissa) and abs(exp) < 10_000:
            out.append((name, Decimal(f"{mantissa}E{exp}")))  # exact: no context rounding
        else:
            raise BadMessage(f"reading record: bad mantissa at value {pos // 3}")
    return out


def _special_decimal(text: bytes, pos: int) -> Decimal:
    try:
        return Decimal(text.decode("ascii"))
    except (UnicodeDecodeError, ArithmeticError, ValueError):
        raise BadMessage(f"reading record: bad special value at value {pos // 3}") from None


def _is_int(item: object) -> bool:
    return isinstance(item, int) and not isinstance(item, bool)


def record_item(rec: WireRecord, base_ms: int) -> dict[str, Any]:
    """The CBOR map of one record; its time is a delta from the batch time `base_ms`."""
    kind: int | str = KIND_CODES.get(rec.kind, rec.kind)
    item: dict[str, Any] = {"k": kind, "id": rec.id, "t": rec.ts_ms - base_ms}
    item.update(rec.fields)
    return item


def encode_batch_payload(
    gw: str, seq: int, prev: bytes, t: int, items: list[dict[str, Any]], *, compress: bool
) -> bytes:
    """CBOR payload of a batch; with `compress`, `recs` is raw DEFLATE of the CBOR array."""
    recs: list[dict[str, Any]] | bytes = items
    if compress:
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        recs = packer.compress(cbor2.dumps(items)) + packer.flush()
    return cbor2.dumps({"v": FORMAT_VERSION, "gw": gw, "seq": seq, "prev": prev, "t": t,
                        "recs": recs})


def _cbor_head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | extra]) + n.to_bytes(size, "big")
    raise ValueError(f"CBOR length {n} too large")


def records_array(encoded_items: list[bytes]) -> bytes:
    """A CBOR array from already-encoded record items (avoids encoding them twice)."""
    return _cbor_head(4, len(encoded_items)) + b"".join(encoded_items)


def encode_batch_payload_raw(gw: str, seq: int, prev: bytes, t: int, recs_array: bytes, *,
                             compress: bool) -> bytes:
    """Same map as encode_batch_payload, from a pre-encoded records array (the batcher's path)."""
    if compress:
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        recs = cbor2.dumps(packer.compress(recs_array) + packer.flush())
    else:
        recs = recs_array
    head = cbor2.dumps({"v": FORMAT_VERSION, "gw": gw, "seq": seq, "prev": prev, "t": t})
    # A 5-entry map head is one byte (0xa5); the 6-entry map adds `recs` after the others.
    return b"\xa6" + head[1:] + cbor2.dumps("recs") + recs


def _inflate(data: bytes) -> bytes:
    unpacker = zlib.decompressobj(-15)
    try:
        out = unpacker.decompress(data, MAX_INFLATED_BYTES)
    except zlib.error as exc:
        raise BadMessage(f"batch: `recs` is not valid raw DEFLATE ({exc})") from None
    if unpacker.unconsumed_tail:
        raise BadMessage(f"batch: `recs` inflates beyond {MAX_INFLATED_BYTES} bytes")
    return out


def _require(payload: dict[Any, Any], key: str, kind: type, what: str) -> Any:
    value = payload.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BadMessage(f"{what}: key `{key}` missing or not {kind.__name__}")
    return value


def _decode_record(item: Any, base_ms: int, pos: int) -> WireRecord:
    if not isinstance(item, dict):
        raise BadMessage(f"batch: record {pos} is not a map")
    kind = item.get("k")
    name = KIND_NAMES.get(kind) if isinstance(kind, int) else kind
    if not isinstance(name, str):
        raise BadMessage(f"batch: record {pos} has an unknown kind {kind!r}")
    rec_id = _require(item, "id", int, f"batch record {pos}")
    delta = _require(item, "t", int, f"batch record {pos}")
    fields = {k: v for k, v in item.items() if k not in RECORD_HEADER_KEYS}
    _check_plain(fields, f"batch: record {pos}", 0)
    return WireRecord(name, rec_id, base_ms + delta, fields)


# What a record field may hold: what the head-end can store as JSON (Decimal and bytes as text).
_PLAIN_LEAVES = (str, int, float, bool, Decimal, bytes, type(None))
_PLAIN_KEYS = (str, int, float, bool, type(None))
# Exact types that are plain leaves (subclasses take the per-item path).
_FLAT_LEAF_TYPES = frozenset(_PLAIN_LEAVES)
MAX_FIELD_DEPTH = 16  # records nest a few levels (values, event data); deeper is garbage


def _check_plain(value: Any, where: str, depth: int) -> None:
    """BadMessage unless `value` is plain data: a validly signed record with a byte-string map
    key or an unknown CBOR tag must be refused, not crash the head-end's store."""
    if depth > MAX_FIELD_DEPTH:
        raise BadMessage(f"{where}: fields nested deeper than {MAX_FIELD_DEPTH}")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, _PLAIN_KEYS):
                raise BadMessage(f"{where}: a map key of type {type(key).__name__}")
            _check_plain(item, where, depth + 1)
    elif isinstance(value, list | tuple):
        if set(map(type, value)) <= _FLAT_LEAF_TYPES:
            return  # flat scalars (a reading's value triples): one C-speed pass, the hot path
        for item in value:
            _check_plain(item, where, depth + 1)
    elif not isinstance(value, _PLAIN_LEAVES):
        raise BadMessage(f"{where}: a field value of type {type(value).__name__}")


def decode_batch_payload(data: bytes) -> BatchPayload:
    """Decode and check the shape of a batch payload (not its chain); BadMessage on defects."""
    payload = loads_strict(data, "batch payload")
    if not isinstance(payload, dict):
        raise BadMessage("batch payload: not a CBOR map")
    if payload.get("v") != FORMAT_VERSION:
        raise BadMessage(f"batch payload: unsupported format version {payload.get('v')!r}")
    prev = _require(payload, "prev", bytes, "batch payload")
    if len(prev) != len(ZERO_HASH):
        raise BadMessage("batch payload: `prev` is not 32 bytes")
    t = _require(payload, "t", int, "batch payload")
    recs = payload.get("recs")
    if isinstance(recs, bytes):
        recs = loads_strict(_inflate(recs), "batch records")
    if not isinstance(recs, list):
        raise BadMessage("batch payload: `recs` is neither an array nor compressed bytes")
    records = [_decode_record(item, t * 1000, pos) for pos, item in enumerate(recs)]
    seq = _require(payload, "seq", int, "batch payload")
    if seq < 1:
        raise BadMessage(f"batch payload: seq {seq} is below 1")
    return BatchPayload(_require(payload, "gw", str, "batch payload"), seq, prev, t, records)


def encode_ack(ack: Ack) -> bytes:
    body: dict[str, Any] = {"gw": ack.gw, "ack": ack.ack}
    if ack.resend is not None:
        body["resend"] = ack.resend
    return cbor2.dumps(body)


def decode_ack(data: bytes) -> Ack:
    body = loads_strict(data, "ack payload")
    if not isinstance(body, dict):
        raise BadMessage("ack payload: not a CBOR map")
    resend = body.get("resend")
    if resend is not None and not _is_int(resend):
        raise BadMessage("ack payload: `resend` is not an integer")
    return Ack(_require(body, "gw", str, "ack payload"), _require(body, "ack", int, "ack payload"),
               resend)


def encode_unavailable(gone: Unavailable) -> bytes:
    return cbor2.dumps({"v": FORMAT_VERSION, "gw": gone.gw, "from": gone.first,
                        "to": gone.last, "sha": gone.sha256})


def decode_unavailable(data: bytes) -> Unavailable:
    """Decode an unavailable record; BadMessage unless 1 <= from <= to and sha is 32 bytes."""
    body = loads_strict(data, "unavailable payload")
    what = "unavailable payload"
    if not isinstance(body, dict) or body.get("v") != FORMAT_VERSION:
        raise BadMessage(f"{what}: not a version {FORMAT_VERSION} CBOR map")
    first, last = _require(body, "from", int, what), _require(body, "to", int, what)
    sha = _require(body, "sha", bytes, what)
    if not 1 <= first <= last or len(sha) != len(ZERO_HASH):
        raise BadMessage(f"{what}: bad range {first}..{last} or hash length")
    return Unavailable(_require(body, "gw", str, what), first, last, sha)


def encode_command(cmd: Command) -> bytes:
    return cbor2.dumps({"id": cmd.id, "gw": cmd.gw, "exp": cmd.exp, "op": cmd.op,
                        "args": cmd.args})


def decode_command(data: bytes) -> Command:
    body = loads_strict(data, "command payload")
    if not isinstance(body, dict):
        raise BadMessage("command payload: not a CBOR map")
    what = "command payload"
    return Command(_require(body, "id", str, what), _require(body, "gw", str, what),
                   _require(body, "exp", int, what), _require(body, "op", str, what),
                   _require(body, "args", dict, what))
