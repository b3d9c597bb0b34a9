"""Sans-IO conversion between Modbus register words and exact Decimal values (and back).

Decoding runs under core.numbers.BOUNDED: a value it cannot hold exactly (a float32 beyond
10^34, an int64 times a huge scale or ratio) is a FrameError for that quantity, never an
OverflowError or decimal exception that would end the bus's poll task. NaN, infinity and
+-FLT_MAX (the "not available" filler many meters write) decode to None.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_EVEN, Context, Decimal, DecimalException, localcontext
from typing import Final

from core.numbers import BOUNDED
from drivers.errors import DriverError, FrameError
from drivers.modbus.layout import Register, Span

# Encoding serves the simulator and tests (our own values, rounding allowed): wide and unbounded.
EXACT: Final[Context] = Context(prec=60)
_FLOAT32: Final[struct.Struct] = struct.Struct(">f")
_U32: Final[struct.Struct] = struct.Struct(">I")
_SIGNED: Final[dict[str, bool]] = {
    "uint16": False, "int16": True, "uint32": False, "int32": True, "uint64": False, "int64": True,
}
_ONE: Final[Decimal] = Decimal(1)
_EXPONENT_BITS: Final[int] = 0x7F800000  # all ones: infinity or NaN
_MAGNITUDE_BITS: Final[int] = 0x7FFFFFFF
FLT_MAX_BITS: Final[int] = 0x7F7FFFFF  # 3.4028235e38; with the sign bit, -FLT_MAX


class EncodeError(DriverError, ValueError):
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


def float32_not_available(bits: int) -> bool:
    """NaN, +-infinity or +-FLT_MAX: what meters write for a value they do not have."""
    return bits & _EXPONENT_BITS == _EXPONENT_BITS or bits & _MAGNITUDE_BITS == FLT_MAX_BITS


def float32_bits_to_decimal(bits: int) -> Decimal | None:
    """The shortest decimal that round-trips to these float32 bits; None when not available.

    Raises FrameError when the value is outside the bounded range (beyond 10^34 or below 1E-40).
    """
    if float32_not_available(bits):
        return None
    packed = _U32.pack(bits)
    (value,) = _FLOAT32.unpack(packed)
    return bounded_plain(Decimal(_shortest_text(value, packed)))


def _shortest_text(value: float, packed: bytes) -> str:
    for digits in range(1, 9):
        text = format(value, f".{digits}g")
        try:
            if _FLOAT32.pack(float(text)) == packed:
                return text
        except OverflowError:  # near FLT_MAX a short candidate rounds beyond the float32 range
            continue
    return format(value, ".9g")  # nine significant digits always round-trip a float32


def bounded_plain(value: Decimal) -> Decimal:
    """`value` checked under BOUNDED, without exponent notation ("2.3E+2" -> "230").

    Raises FrameError when it cannot be held exactly (too many digits, exponent out of range).
    """
    try:
        # plus() applies the bounds; it also turns -0 into 0, so the sign is put back (exact):
        # a float32 -0.0 must round-trip to the same bits
        checked = BOUNDED.plus(value).copy_sign(value)
        exponent = checked.as_tuple().exponent
        if not isinstance(exponent, int):  # NaN or infinity: no number to store
            raise FrameError(f"value {value!s:.40} is not finite")
        if exponent > 0:
            checked = checked.quantize(_ONE, context=BOUNDED)
    except DecimalException:
        raise FrameError(f"value {value!s:.40} is out of range") from None
    return checked


def decimal_to_float32_bits(value: Decimal) -> int:
    """The float32 nearest to `value` (the inverse of float32_bits_to_decimal on its outputs)."""
    try:
        packed = _FLOAT32.pack(float(value))
    except OverflowError:
        raise EncodeError(f"{value} does not fit a float32") from None
    return int(_U32.unpack(packed)[0])


def decode_span(span: Span, words: Sequence[int]) -> Decimal | None:
    """One span's scaled value, None when the meter says "not available" (NaN, inf, FLT_MAX)."""
    if span.dtype == "float32":
        raw = float32_bits_to_decimal(words_to_int(words, False, span.word_order))
        if raw is None:
            return None
    else:
        raw = Decimal(words_to_int(words, _SIGNED[span.dtype], span.word_order))
    if span.scale == _ONE:
        return bounded_plain(raw)
    return _bounded(BOUNDED.multiply, raw, span.scale)


def _bounded(operation: Callable[[Decimal, Decimal], Decimal], left: Decimal,
             right: Decimal) -> Decimal:
    """`operation(left, right)` under BOUNDED, plain form; FrameError when out of range."""
    try:
        result = operation(left, right)
    except DecimalException:
        raise FrameError(f"{left!s:.40} and {right!s:.40} give a value out of range") from None
    return bounded_plain(result)


def decode_register(register: Register, words_of: Sequence[Sequence[int]]) -> Decimal | None:
    """A quantity's value from the words of each of its spans (summed); None if any is not
    available. Raises FrameError for a wrong word count or a value out of range."""
    total: Decimal | None = None
    for span, words in zip(register.spans, words_of, strict=True):
        if len(words) != span.words:
            raise FrameError(
                f"{register.quantity}: expected {span.words} registers, got {len(words)}")
        value = decode_span(span, words)
        if value is None:
            return None
        total = value if total is None else _bounded(BOUNDED.add, total, value)
    return total


def apply_ratio(value: Decimal, ratio: str | None, ct: Decimal, vt: Decimal) -> Decimal:
    """Secondary-side value -> primary-side value; FrameError when the product is out of range."""
    if ratio is None:
        return value
    if ratio == "ct":
        factor = ct
    elif ratio == "vt":
        factor = vt
    else:
        factor = _bounded(BOUNDED.multiply, ct, vt)
    return _bounded(BOUNDED.multiply, value, factor)


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
