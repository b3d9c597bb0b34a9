"""Money as a value: exact integer minor units at the ledger scale, with its currency.

The ledger (storage/ledger.py) and prepay count money in units of 1/10000 of the currency unit
(`12.50 EUR` is 125000 units, docs/prepay.md). `MONEY_SCALE` is defined here once; the prepay
core (prepay/core.py) keeps its own plain-int copy because it also runs under MicroPython and
imports nothing, and a test holds the two equal.

No float ever: text is parsed digit by digit under the bounded Decimal context, amounts add and
subtract only within one currency, and `text()` rounds to cents half-even for people while
`exact_text()` keeps all four decimals for records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, DecimalException, localcontext
from typing import Final

from core.errors import Refused
from core.numbers import BOUNDED, OutOfRange, exact_decimal

MONEY_SCALE: Final = 10000  # money units per currency unit
DECIMALS: Final = 4  # MONEY_SCALE == 10 ** DECIMALS
SHOWN_DECIMALS: Final = 2  # what a person reads and types: cents
# The bounds of prepay/tariffs.py `money_units` (docs/prepay.md, "Bounds"): plain digits with
# an optional point, at most 40 characters, at most 10^9 currency units.
MAX_AMOUNT: Final = 10**9 * MONEY_SCALE
MAX_AMOUNT_CHARS: Final = 40
_PLAIN_DECIMAL: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_CURRENCY: Final = re.compile(r"[A-Z]{3}")  # an ISO 4217 alphabetic code
# ISO 4217's code for "no currency involved": an amount whose currency another part knows (the
# console's client half checks and shows amounts; the gateway's [prepay] currency is the server's)
NO_CURRENCY: Final = "XXX"


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: `units` of 1/MONEY_SCALE of `currency` (negative for a debt)."""

    units: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.units, bool) or not isinstance(self.units, int):
            raise TypeError(f"money units are an int, got {type(self.units).__name__}")
        if not isinstance(self.currency, str) or not _CURRENCY.fullmatch(self.currency):
            raise Refused("bad_currency", f"{self.currency!r:.20} is not a 3-letter code")

    @classmethod
    def parse(cls, text: str, currency: str, *, maximum: int = MAX_AMOUNT) -> Money:
        """Plain decimal text ("12.50", at most 4 decimals, no sign) -> Money, or
        `Refused("bad_amount")` naming what is wrong; never via float, never unbounded."""
        if not isinstance(text, str):
            raise Refused("bad_amount", f"amount must be decimal text, got {text!r:.40}")
        if len(text) > MAX_AMOUNT_CHARS or not _PLAIN_DECIMAL.fullmatch(text):
            raise Refused("bad_amount", f"not a plain decimal amount (digits, optional point, "
                                        f"no sign or exponent): {text[:40]!r}")
        try:
            with localcontext(BOUNDED):
                scaled = exact_decimal(text).scaleb(DECIMALS)
                fractional = scaled != scaled.to_integral_value()
        except (OutOfRange, DecimalException):
            raise Refused("bad_amount", f"{text[:40]!r} is out of range") from None
        if fractional:
            raise Refused("bad_amount", f"{text!r} has more than {DECIMALS} decimals")
        units = int(scaled)
        if units > maximum:
            raise Refused("bad_amount", f"{text!r} is above the maximum of "
                                        f"{cls(maximum, currency).exact_text()}")
        return cls(units, currency)

    @classmethod
    def of(cls, amount: Decimal, currency: str) -> Money:
        """An exact Decimal in currency units (negative for a debt) -> Money, within the bounds
        and digits of `parse` (else `Refused("bad_amount")`); never rounded."""
        if not isinstance(amount, Decimal) or not amount.is_finite():
            raise Refused("bad_amount", f"not a finite decimal amount: {amount!r:.40}")
        magnitude = cls.parse(f"{amount.copy_abs():f}", currency)  # "f": digits, no exponent
        return -magnitude if amount.is_signed() else magnitude

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise Refused("wrong_currency", f"{other.currency} amount with {self.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.units + other.units, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.units - other.units, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.units, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.units < other.units

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.units <= other.units

    def decimal(self) -> Decimal:
        """The exact amount in currency units (4 decimals), for records and arithmetic."""
        return Decimal(f"{self.units}E-{DECIMALS}")  # from text: exact at any size

    def cents(self) -> int:
        """The amount in cents, rounded half-even (as the console has always shown it)."""
        step = MONEY_SCALE // 10**SHOWN_DECIMALS
        whole, rest = divmod(self.units, step)  # floor: rest in [0, step)
        if rest * 2 > step or (rest * 2 == step and whole % 2):
            whole += 1
        return whole

    def text(self) -> str:
        """"12.50": two decimals, rounded half-even (what a person reads and types)."""
        cents = self.cents()
        whole, frac = divmod(abs(cents), 10**SHOWN_DECIMALS)
        return f"{'-' if cents < 0 else ''}{whole}.{frac:0{SHOWN_DECIMALS}d}"

    def exact_text(self) -> str:
        """"12.5000": all four decimals, nothing lost (what a record carries)."""
        whole, frac = divmod(abs(self.units), MONEY_SCALE)
        return f"{'-' if self.units < 0 else ''}{whole}.{frac:0{DECIMALS}d}"

    def __str__(self) -> str:
        return f"{self.text()} {self.currency}"


__all__ = ["DECIMALS", "MAX_AMOUNT", "MONEY_SCALE", "NO_CURRENCY", "Money"]
