"""Compact, exact encoding of a reading's values as one CBOR array (never a float).

Layout: a flat CBOR array of items `qid, value...` where `qid` is the row id of the interned
(quantity, unit) pair in table `quantities`, followed by exactly one of:
  * two integers `mantissa, exponent` for a finite Decimal (value = mantissa * 10**exponent,
    exponent kept as is so `1.50` stays `1.50`);
  * a text string for a str value;
  * a byte string holding the Decimal's own text for what the integer pair cannot carry
    (negative zero, Infinity, NaN and sNaN with their payloads).
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from decimal import Decimal

import cbor2

from storage.errors import StoreCorrupt

Item = tuple[int, Decimal | str]
# Shifting a finite Decimal by its own exponent under this context never rounds: the integer
# mantissa comes out exact (about twice as fast as joining its digits).
EXACT = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


def encode_items(items: Sequence[Item]) -> bytes:
    """Encode (qid, value) pairs; raises TypeError for a value that is neither Decimal nor str."""
    flat: list[int | str | bytes] = []
    for qid, value in items:
        flat.append(qid)
        flat.extend(_encode_value(value))
    return cbor2.dumps(flat)


def _encode_value(value: Decimal | str) -> list[int | str | bytes]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Decimal):
        raise TypeError(f"value must be Decimal or str, not {type(value).__name__}: {value!r}")
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or (sign and not any(digits)):
        return [str(value).encode("ascii")]
    return [int(value.scaleb(-exponent, EXACT)), exponent]  # the exact signed mantissa


def decode_items(blob: bytes, where: str) -> list[Item]:
    """Decode a blob made by encode_items; `where` names the row in errors (StoreCorrupt)."""
    try:
        flat = cbor2.loads(blob)
    except Exception as exc:  # cbor2 raises several unrelated types on garbage
        raise StoreCorrupt(f"{where}: undecodable values blob: {exc}") from exc
    if not isinstance(flat, list):
        raise StoreCorrupt(f"{where}: values blob is not an array")
    items: list[Item] = []
    pos = 0
    while pos < len(flat):
        qid = flat[pos]
        if not isinstance(qid, int) or isinstance(qid, bool) or pos + 1 >= len(flat):
            raise StoreCorrupt(f"{where}: bad quantity id at item {pos}")
        value, used = _decode_value(flat, pos + 1, where)
        items.append((qid, value))
        pos += 1 + used
    return items


def _decode_value(flat: list[object], pos: int, where: str) -> tuple[Decimal | str, int]:
    head = flat[pos]
    if isinstance(head, str):
        return head, 1
    if isinstance(head, bytes):
        return _decimal_from_text(head, where, pos), 1
    exponent = flat[pos + 1] if pos + 1 < len(flat) else None
    if _is_int(head) and _is_int(exponent):
        # the text form is exact (no context applies to construction) and keeps the exponent:
        # "2301E-1" is 230.1, "0E-2" is 0.00; about 2.5 times faster than a digits tuple
        try:
            return Decimal(f"{head}E{exponent}"), 2
        except (ArithmeticError, ValueError) as exc:  # an exponent or mantissa out of reach
            raise StoreCorrupt(f"{where}: value out of range at item {pos}") from exc
    raise StoreCorrupt(f"{where}: bad value at item {pos}")


def _is_int(obj: object) -> bool:
    return isinstance(obj, int) and not isinstance(obj, bool)


def _decimal_from_text(raw: bytes, where: str, pos: int) -> Decimal:
    try:
        return Decimal(raw.decode("ascii"))
    except (ArithmeticError, UnicodeDecodeError, ValueError) as exc:
        raise StoreCorrupt(f"{where}: bad decimal text at item {pos}: {raw!r}") from exc
