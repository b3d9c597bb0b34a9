"""Sans-IO conversion between Modbus register words and exact Decimal values (and back)."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from typing import Final

from drivers.errors import FrameError
from drivers.modbus.profiles import Register, Span

# Wide enough that int64 raw values times a scale and a CT*VT ratio stay exact.
EXACT: Final[Context] = Context(prec=60)
_FLOAT32: Final[struct.Struct] = struct.Struct(">f")
_U32: Final[struct.Struct] = struct.Struct(">I")
_SIGNED: Final[dict[str, bool]] = {
    "uint16": False, "int16": True, "uint32": False, "int32": True, "uint64": False, "int64": True,
}
_ONE: Final[Decimal] = Decimal(1)


class EncodeError(ValueError):
    """A value that cannot be put in a register (out of range, not on the scale grid)."""


def words_to_int(words: Sequence[int], signed: bool, word_order: str) -> int:
    """Join 16-bit words (bytes big-endian inside each word) into one integer."""
    ordered = words if word_order == "big" else words[::-1]
    raw = 0
    for word in ordered:
        raw = (raw << 16) | word
    bits = 16 * len(words)
    if signed and raw >> (bits - 1):
        raw -= 1 << bits
    return raw


def int_to_words(raw: int, n_words: int, word_order: str) -> list[int]:
    """Split an integer (two's complement when negative) into 16-bit words."""
    raw &= (1 << (16 * n_words)) - 1
    words = [(raw >> (16 * (n_words - 1 - i))) & 0xFFFF for i in range(n_words)]
    return words if word_order == "big" else words[::-1]


def float32_bits_to_decimal(bits: int) -> Decimal | None:
    """The shortest decimal that round-trips to these float32 bits; None for NaN / infinity."""
    packed = _U32.pack(bits)
    (value,) = _FLOAT32.unpack(packed)
    if not math.isfinite(value):
        return None
    for digits in range(1, 10):
        text = format(value, f".{digits}g")
        if _FLOAT32.pack(float(text)) == packed:
            break
    result = Decimal(text)
    if result.as_tuple().exponent > 0:  # type: ignore[operator]
        result = result.quantize(_ONE, context=EXACT)  # "2.3E+2" -> "230"
    return result


def decimal_to_float32_bits(value: Decimal) -> int:
    """The float32 nearest to `value` (the inverse of float32_bits_to_decimal on its outputs)."""
    try:
        packed = _FLOAT32.pack(float(value))
    except OverflowError:
        raise EncodeError(f"{value} does not fit a float32") from None
    return int(_U32.unpack(packed)[0])


def decode_span(span: Span, words: Sequence[int]) -> Decimal | None:
    """One span's scaled value, or None when the meter reports NaN / infinity (absent phase)."""
    if span.dtype == "float32":
        bits = words_to_int(words, False, span.word_order)
        raw = float32_bits_to_decimal(bits)
        if raw is None:
            return None
    else:
        raw = Decimal(words_to_int(words, _SIGNED[span.dtype], span.word_order))
    if span.scale == _ONE:
        return raw
    return EXACT.multiply(raw, span.scale)


def decode_register(register: Register, words_of: Sequence[Sequence[int]]) -> Decimal | None:
    """A quantity's value from the words of each of its spans (summed); None if any is NaN."""
    total: Decimal | None = None
    for span, words in zip(register.spans, words_of, strict=True):
        if len(words) != span.words:
            raise FrameError(
                f"{register.quantity}: expected {span.words} registers, got {len(words)}")
        value = decode_span(span, words)
        if value is None:
            return None
        total = value if total is None else EXACT.add(total, value)
    return total


def apply_ratio(value: Decimal, ratio: str | None, ct: Decimal, vt: Decimal) -> Decimal:
    """Secondary-side value -> primary-side value."""
    if ratio is None:
        return value
    factor = {"ct": ct, "vt": vt, "ct*vt": EXACT.multiply(ct, vt)}[ratio]
    return EXACT.multiply(value, factor)


def encode_span(span: Span, value: Decimal, *, rounding: bool = False) -> list[int]:
    """Words for one span holding `value` (in the quantity's unit, i.e. after scaling)."""
    with localcontext(EXACT):
        raw = value / span.scale
    if span.dtype == "float32":
        return int_to_words(decimal_to_float32_bits(raw), 2, span.word_order)
    integral = raw.to_integral_value(rounding=ROUND_HALF_EVEN)
    if integral != raw and not rounding:
        raise EncodeError(f"{value} is not a multiple of the scale {span.scale}")
    bits = 16 * span.words
    if _SIGNED[span.dtype]:
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        low, high = 0, (1 << bits) - 1
    if not low <= integral <= high:
        raise EncodeError(f"{value} does not fit {span.dtype} with scale {span.scale}")
    return int_to_words(int(integral), span.words, span.word_order)


def encode_register(
    register: Register, value: Decimal, *, rounding: bool = False
) -> list[list[int]]:
    """Words of each span; a multi-span quantity puts the whole units first, the rest after."""
    remaining = value
    result: list[list[int]] = []
    last = len(register.spans) - 1
    for index, span in enumerate(register.spans):
        if index == last:
            part = remaining
        else:
            with localcontext(EXACT):
                whole = (remaining / span.scale).to_integral_value(rounding="ROUND_FLOOR")
                part = whole * span.scale
        result.append(encode_span(span, part, rounding=rounding))
        remaining = EXACT.subtract(remaining, part)
    return result
