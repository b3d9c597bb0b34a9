"""EN 13757-3 value codings: (data bytes, power of ten) -> exact value, under core.numbers.BOUNDED.

Integers and BCD are scaled exactly; a value BOUNDED cannot hold raises (DecimalException or
OutOfRange) and the record decoder turns it into a null record with a FrameError message. Dates
and times (types G, J, F, I) are checked against the calendar: an invalid one (all FF, all zero,
month 15, day 0, hour 28, the IV bit set, year 100-127) is None, never a made-up date.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import date, time
from decimal import Decimal
from typing import Final

from core.numbers import BOUNDED, within
from drivers.mbus import vif as V

BCD_NIBBLES: Final = frozenset((0x9, 0xA, 0xB, 0xC, 0xE))
_CENTURY: Final = 2000  # 7-bit years 0..99 (EN 13757-3 annex A); 100..127 are invalid
_INVALID_TIME: Final = 0x80   # IV bit of the minute byte (types F and I): "time invalid"

Converter = Callable[[bytes, int], "Decimal | str | None"]


def _scaled(number: int, exponent: int) -> Decimal:
    """number x 10^exponent, written without exponent notation when exponent > 0.

    Raises OutOfRange / DecimalException when BOUNDED cannot hold it exactly."""
    if exponent > 0:
        return within(Decimal(number * 10**exponent))  # exponent <= 39: the power is small
    return Decimal(number).scaleb(exponent, BOUNDED)


def int_value(raw: bytes, exponent: int) -> Decimal:
    return _scaled(int.from_bytes(raw, "little", signed=True), exponent)


def int_value_fast(raw: bytes, exponent: int) -> Decimal:
    """Marker for the decode loop, which inlines this for exponent <= 0 (the common case)."""
    return Decimal(int.from_bytes(raw, "little", signed=True)).scaleb(exponent, BOUNDED)


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


def date_g(raw: bytes) -> str | None:
    """Type G date (2 bytes) as ISO `YYYY-MM-DD`; None when it is no calendar date."""
    day, month = raw[0] & 0x1F, raw[1] & 0x0F
    year = ((raw[0] & 0xE0) >> 5) | ((raw[1] & 0xF0) >> 1)
    if year > 99:   # all FF is year 127: "no date"; 2127-15-31 is not one
        return None
    try:
        return date(_CENTURY + year, month, day).isoformat()   # refuses month 0/15, day 0...
    except ValueError:
        return None


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
    try:
        moment = time(hour, minute, second or 0)
    except ValueError:
        return None
    return moment.isoformat("minutes" if second is None else "seconds")


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
    if interpret in (V.DATE, V.DATETIME):
        return date_value
    if interpret == V.IDENT:
        return (lambda raw, exp: ident_value(raw, exp, True)) if is_bcd else ident_value
    return raw_value
