"""One bounded Decimal context for every operation on numbers that come from outside.

Meter data, vouchers, commands and config values are parsed into exact Decimals. Python's default
context is unbounded in exponent and raises on some inputs (`1E+999999` quantized, 26-digit values
under a 25-digit precision); a value an attacker or a broken meter can send must never become an
exception that ends a task. Every such operation runs under `BOUNDED`, with every trap set, so an
out-of-range value raises `decimal.DecimalException` at once, which the caller maps to its own
error for that data set (a `FrameError`, a `Refused("bad_amount")`, a config error).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from decimal import (
    ROUND_HALF_EVEN,
    Clamped,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    Subnormal,
    Underflow,
    localcontext,
)
from typing import Final

from core.errors import MeterGatewayError

# 34 significant digits (IEEE decimal128): far beyond any register (a 64-bit counter has 20
# digits) and any money amount, small enough that no operation allocates without bound.
PRECISION: Final = 34
# Exponents a physical or money value can sensibly have; anything beyond is refused, not computed.
EMAX: Final = 40
EMIN: Final = -40

BOUNDED: Final[Context] = Context(
    prec=PRECISION, rounding=ROUND_HALF_EVEN, Emax=EMAX, Emin=EMIN, capitals=1, clamp=0,
    # Inexact and Rounded trap too: an exact value that needs rounding is not exact any more.
    traps=[InvalidOperation, DivisionByZero, Overflow, Underflow, Subnormal, Clamped, Inexact,
           Rounded],
)


class OutOfRange(MeterGatewayError, ValueError):
    """A number from outside that the bounded context cannot hold exactly."""


def bounded() -> AbstractContextManager[Context]:
    """A context manager running the block under BOUNDED (`with bounded(): ...`)."""
    return localcontext(BOUNDED)


def exact_decimal(text: str) -> Decimal:
    """Parse `text` as a finite Decimal inside the bounds, or raise OutOfRange naming it."""
    try:
        with localcontext(BOUNDED):
            value = +Decimal(text)  # unary plus applies the context: bounds and precision
    except (DecimalException, ValueError) as error:
        raise OutOfRange(f"number {text[:40]!r} is out of range") from error
    if not value.is_finite():
        raise OutOfRange(f"number {text[:40]!r} is not finite")
    return value


def within(value: Decimal) -> Decimal:
    """`value` checked against the bounds (finite, precision, exponent), or OutOfRange."""
    if not value.is_finite():
        raise OutOfRange(f"number {value!s:.40} is not finite")
    try:
        with localcontext(BOUNDED):
            return +value
    except DecimalException as error:
        raise OutOfRange(f"number {value!s:.40} is out of range") from error
