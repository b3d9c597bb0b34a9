"""EN 13757-3 value codings: (data bytes, power of ten) -> exact value, under core.numbers.BOUNDED.

Integers and BCD are scaled exactly; a value BOUNDED cannot hold raises (DecimalException or
OutOfRange) and the record decoder turns it into a null record with a FrameError message. Dates
and times (types G, J, F, I) are checked against the calendar: an invalid one (all FF, all zero,
month 15, day 0, hour 28, the IV bit set, year 100-127) is None, never a made-up date.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from decimal import Decimal
from typing import Final

from core.numbers import BOUNDED, within
from drivers.mbus import vif as V

BCD_NIBBLES: Final = frozenset((0x9, 0xA, 0xB, 0xC, 0xE))
_CENTURY: Final = 2000  # 7-bit years 0..99 (EN 13757-3 annex A); 100..127 are invalid
_INVALID_TIME: Final = 0x80   # IV bit of the minute byte (types F and I): "time invalid"

Converter = Callable[[bytes, int], "Decimal | str | None"]


# ---- integers: the proven fast path -------------------------------------------------------
#
# Claim: for an integer n with |n| < 10**20 and an exponent e with -12 <= e <= 12, the bounded
# computation of n x 10^e cannot signal, so it needs no context check:
#   * Decimal(n) from an int is exact under any context (the constructor does not round).
#   * e > 0: n * 10**e is an int of at most 20 + 12 = 32 digits; within() applies BOUNDED's
#     unary plus to it: 32 <= prec 34 digits, so no Rounded / Inexact; its adjusted exponent is
#     at most 31 <= Emax 40 (no Overflow, no Clamped) and at least 0 >= Emin -40 (no Subnormal,
#     no Underflow). So within(Decimal(n * 10**e)) is Decimal(n * 10**e), unchanged.
#   * e <= 0: Decimal(n).scaleb(e, BOUNDED) has coefficient n (<= 20 digits <= 34: no rounding),
#     exponent e >= -12 (>= Etiny = Emin - prec + 1 = -73) and adjusted exponent in [e, e + 19]
#     = [-12, 19], inside [Emin, Emax] = [-40, 40]: no signal. (This is the bounded path itself;
#     the proof says only that the decoder's inlined copy of it never falls back.)
# A fixed-size EN 13757-3 integer has at most 8 bytes: |n| <= 2**63 < 10**20, and a BCD field at
# most 6 bytes (12 digits). tests/drivers/mbus/test_values.py checks fast == bounded (hypothesis).
PROVEN_LIMIT: Final = 10**20          # |n| below this ...
PROVEN_EXPONENT: Final = 12           # ... and |e| up to this: exact without a context check
PROVEN_BYTES: Final = 8               # a fixed-size binary integer of at most 8 bytes: |n| < 10^20
_POWERS: Final = tuple(10**e for e in range(PROVEN_EXPONENT + 1))


def _scaled(number: int, exponent: int) -> Decimal:
    """number x 10^exponent, written without exponent notation when exponent > 0.

    Raises OutOfRange / DecimalException when BOUNDED cannot hold it exactly."""
    if exponent > 0:
        if exponent <= PROVEN_EXPONENT and -PROVEN_LIMIT < number < PROVEN_LIMIT:
            return Decimal(number * _POWERS[exponent])   # proven exact and in bounds (above)
        return within(Decimal(number * 10**exponent))  # exponent <= 39: the power is small
    return Decimal(number).scaleb(exponent, BOUNDED)


def scaled_bounded(number: int, exponent: int) -> Decimal:
    """The reference: number x 10^exponent through BOUNDED's checks every time (tests compare
    the fast paths with it)."""
    if exponent > 0:
        return within(Decimal(number * 10**exponent))
    return Decimal(number).scaleb(exponent, BOUNDED)


def proven_power(size: int, exponent: int) -> int | None:
    """10**exponent when a binary integer of `size` bytes times it is proven exact and within
    BOUNDED (0 < exponent <= PROVEN_EXPONENT, size <= PROVEN_BYTES); None otherwise."""
    if 0 < exponent <= PROVEN_EXPONENT and 0 < size <= PROVEN_BYTES:
        return _POWERS[exponent]
    return None


def int_value(raw: bytes, exponent: int) -> Decimal:
    return _scaled(int.from_bytes(raw, "little", signed=True), exponent)


def uint_value(raw: bytes, exponent: int) -> Decimal:
    """An unsigned binary count (the access number 0-255 is a counter, not a type B number)."""
    return _scaled(int.from_bytes(raw, "little"), exponent)


def int_value_fast(raw: bytes, exponent: int) -> Decimal:
    """Marker for the decode loop, which inlines this for exponent <= 0 (the common case)."""
    return Decimal(int.from_bytes(raw, "little", signed=True)).scaleb(exponent, BOUNDED)


def int_value_up(raw: bytes, exponent: int) -> Decimal:
    """Marker for the decode loop, which inlines this with the step's proven_power(): a binary
    integer of <= 8 bytes times 10^exponent, 0 < exponent <= 12 (exact, see the proof above)."""
    return Decimal(int.from_bytes(raw, "little", signed=True) * _POWERS[exponent])


def bcd_value(raw: bytes, exponent: int) -> Decimal | str:
    digits = raw[::-1].hex()
    negative = digits[:1] == "f"
    if negative:
        digits = digits[1:]
    if not digits.isdigit():
        return "invalid_bcd:" + raw.hex()
    number = int(digits)
    return _scaled(-number if negative else number, exponent)


def negative_bcd_value(raw: bytes, exponent: int) -> Decimal | str:
    value = bcd_value(raw, exponent)
    return value.copy_negate() if isinstance(value, Decimal) else value   # exact, no context


def real_value(raw: bytes, exponent: int) -> Decimal | str:
    (number,) = struct.unpack("<f", raw)
    if number != number or number in (float("inf"), float("-inf")):
        return "invalid_real:" + raw.hex()   # NaN / infinity: no value, and no exception
    for precision in range(1, 9):  # shortest decimal that maps back to the same 32 bits
        text = f"{number:.{precision}g}"
        try:
            if struct.pack("<f", float(text)) == raw:
                return _plain_scaleb(Decimal(text), exponent)
        except OverflowError:   # near FLT_MAX a short candidate rounds beyond float32
            continue
    return _plain_scaleb(Decimal(f"{number:.9g}"), exponent)   # 9 digits always round-trip


def _plain_scaleb(value: Decimal, exponent: int) -> Decimal:
    scaled = value.scaleb(exponent, BOUNDED)
    digits_exponent = scaled.as_tuple().exponent
    if isinstance(digits_exponent, int) and digits_exponent > 0:
        return scaled.quantize(Decimal(1), context=BOUNDED)
    return scaled


# Days per month in 2000-2099 (7-bit years 0..99): February has 29 exactly when year % 4 == 0
# (2000 is a leap year: divisible by 400). Checked against datetime.date for all 65536 inputs.
_MONTH_DAYS: Final = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def date_g(raw: bytes) -> str | None:
    """Type G date (2 bytes) as ISO `YYYY-MM-DD`; None when it is no calendar date."""
    day, month = raw[0] & 0x1F, raw[1] & 0x0F
    year = ((raw[0] & 0xE0) >> 5) | ((raw[1] & 0xF0) >> 1)
    if year > 99 or not 0 < month <= 12 or day == 0:   # all FF is year 127: "no date"
        return None
    if day > _MONTH_DAYS[month] and not (month == 2 and day == 29 and year % 4 == 0):
        return None   # 31 April, 30 February, 29 February 2023 ...
    return f"{_CENTURY + year}-{month:02d}-{day:02d}"


def time_j(raw: bytes) -> str | None:
    """Type J time of day (3 bytes: second, minute, hour) as `HH:MM:SS`; None when invalid."""
    return _clock(raw[2] & 0x1F, raw[1] & 0x3F, raw[0] & 0x3F)


def datetime_f(raw: bytes) -> str | None:
    """Type F (4 bytes, minutes) or type I (6 bytes, seconds) date-time as ISO 8601; None when
    the date or time is invalid (IV bit, minute 63, hour 31, an invalid type G date)."""
    second: int | None = None
    if len(raw) == 6:
        second, raw = raw[0] & 0x3F, raw[1:]
    if raw[0] & _INVALID_TIME:
        return None
    day = date_g(raw[2:4])
    clock = _clock(raw[1] & 0x1F, raw[0] & 0x3F, second)
    if day is None or clock is None:
        return None
    return f"{day}T{clock}"


def _clock(hour: int, minute: int, second: int | None) -> str | None:
    """`HH:MM` (or `HH:MM:SS`) like datetime.time.isoformat; None for hour > 23, minute or
    second > 59 (checked against datetime.time for every input)."""
    if hour > 23 or minute > 59:
        return None
    if second is None:
        return f"{hour:02d}:{minute:02d}"
    if second > 59:
        return None
    return f"{hour:02d}:{minute:02d}:{second:02d}"


def date_value(raw: bytes, exponent: int) -> str | None:
    """Types G (2 bytes), J (3), F (4), I (6); any other size is no date we can read."""
    if len(raw) == 2:
        return date_g(raw)
    if len(raw) == 3:
        return time_j(raw)
    if len(raw) in (4, 6):
        return datetime_f(raw)
    return None


def ident_value(raw: bytes, exponent: int, bcd: bool = False) -> str:
    # Binary identifiers (parameter set, versions) are conventionally shown in hex, like BCD ones.
    return raw[::-1].hex().upper()


def text_value(raw: bytes, exponent: int) -> str:
    return raw[::-1].decode("latin-1")


def raw_value(raw: bytes, exponent: int) -> str:
    return raw.hex()


def converter(data_field: int, interpret: str) -> Converter:
    is_bcd = data_field in BCD_NIBBLES
    if interpret == V.NUMBER:
        if data_field == 0x5:
            return real_value
        return bcd_value if is_bcd else int_value
    if interpret == V.COUNTER:
        return bcd_value if is_bcd else uint_value
    if interpret in (V.DATE, V.DATETIME):
        return date_value
    if interpret == V.IDENT:
        return (lambda raw, exp: ident_value(raw, exp, True)) if is_bcd else ident_value
    return raw_value
