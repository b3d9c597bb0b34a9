"""Money: exact parse and format round trips, the bounds of money_units, one currency per sum."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core import money
from core.errors import Refused
from core.money import MAX_AMOUNT, MONEY_SCALE, Money
from prepay import core as prepay_core
from prepay import tariffs
from prepay.errors import TariffError

CURRENCIES = st.sampled_from(["EUR", "USD", "KES", "XOF"])
UNITS = st.integers(min_value=0, max_value=MAX_AMOUNT)
ANY_UNITS = st.integers(min_value=-(10**20), max_value=10**20)
# Plain decimal text as people and head-ends write it: digits, optional point and decimals.
PLAIN = st.builds(lambda whole, frac: whole + (f".{frac}" if frac else ""),
                  st.from_regex(r"[0-9]{1,13}", fullmatch=True),
                  st.from_regex(r"[0-9]{0,6}", fullmatch=True))


def test_one_scale_shared_with_the_portable_core() -> None:
    assert MONEY_SCALE == prepay_core.MONEY_SCALE == 10**money.DECIMALS
    assert MAX_AMOUNT == prepay_core.MAX_AMOUNT
    assert money.MAX_AMOUNT_CHARS == tariffs.MAX_AMOUNT_CHARS


@given(UNITS, CURRENCIES)
@example(0, "EUR")
@example(MAX_AMOUNT, "EUR")
def test_exact_text_round_trips(units: int, currency: str) -> None:
    amount = Money(units, currency)
    assert Money.parse(amount.exact_text(), currency) == amount
    assert Decimal(amount.exact_text()) == amount.decimal()


@given(st.integers(min_value=0, max_value=MAX_AMOUNT // 100), CURRENCIES)
def test_cents_text_round_trips(cents: int, currency: str) -> None:
    amount = Money(cents * 100, currency)
    assert Money.parse(amount.text(), currency) == amount
    assert amount.cents() == cents


@given(ANY_UNITS)
@example(50)
@example(150)
@example(-50)
@example(-150)
@example(-1)
def test_text_rounds_like_the_console_always_did(units: int) -> None:
    # gateway/console/ops_common.py: (Decimal(units) / MONEY_SCALE).quantize(Decimal("0.01"))
    before = (Decimal(units) / Decimal(10000)).quantize(Decimal("0.01"))
    assert Money(units, "EUR").text() == f"{before:f}".replace("-0.00", "0.00")
    assert str(Money(units, "EUR")) == Money(units, "EUR").text() + " EUR"


@given(PLAIN)
@example("0")
@example("000.0000")
@example("1000000000")
def test_parse_agrees_with_money_units(text: str) -> None:
    try:
        expected: int | None = tariffs.money_units(text, "amount")
    except TariffError:
        expected = None
    try:
        got: int | None = Money.parse(text, "EUR").units
    except Refused as refused:
        assert refused.reason == "bad_amount"
        got = None
    assert got == expected


@given(PLAIN.filter(lambda t: len(t.partition(".")[2]) <= 4 and len(t.partition(".")[0]) <= 9))
def test_parse_is_digit_exact(text: str) -> None:
    whole, _, frac = text.partition(".")
    assert Money.parse(text, "EUR").units == int(whole) * MONEY_SCALE + int(frac.ljust(4, "0"))


@pytest.mark.parametrize("text", [
    "", " 1", "1 ", "-1", "+1", "1e3", "1E3", "1_000", ".5", "5.", "1.2.3", "NaN", "Infinity",
    "0.00001", "1000000000.0001", "1" + "0" * 39, "0" * 41, "١٢", "12,50",
])
def test_refused_amounts(text: str) -> None:
    with pytest.raises(Refused) as info:
        Money.parse(text, "EUR")
    assert info.value.reason == "bad_amount"


def test_bounds() -> None:
    assert Money.parse("1000000000", "EUR").units == MAX_AMOUNT
    assert Money.parse("1000000000.0000", "EUR").units == MAX_AMOUNT
    assert Money.parse("0" * 40, "EUR").units == 0
    with pytest.raises(Refused, match="above the maximum"):
        Money.parse("10.01", "EUR", maximum=10 * MONEY_SCALE)
    with pytest.raises(Refused):
        Money.parse(12, "EUR")  # type: ignore[arg-type]  # whole ints are not text


@given(ANY_UNITS, ANY_UNITS)
def test_sum_and_difference_are_exact(a: int, b: int) -> None:
    assert (Money(a, "EUR") + Money(b, "EUR")).units == a + b
    assert (Money(a, "EUR") - Money(b, "EUR")).units == a - b
    assert -Money(a, "EUR") == Money(-a, "EUR")
    assert (Money(a, "EUR") < Money(b, "EUR")) == (a < b)


@given(ANY_UNITS, ANY_UNITS)
def test_currency_mismatch_is_refused(a: int, b: int) -> None:
    eur, usd = Money(a, "EUR"), Money(b, "USD")
    for combine in (lambda: eur + usd, lambda: eur - usd, lambda: eur < usd, lambda: eur <= usd):
        with pytest.raises(Refused) as info:
            combine()
        assert info.value.reason == "wrong_currency"
    assert eur != usd  # equal units, other currency: not the same money


@pytest.mark.parametrize("currency", ["", "eur", "EURO", "E1R", "€"])
def test_bad_currency_codes_are_refused(currency: str) -> None:
    with pytest.raises(Refused) as info:
        Money(1, currency)
    assert info.value.reason == "bad_currency"


@pytest.mark.parametrize("units", [1.0, Decimal(1), True, "1"])
def test_units_are_ints_never_floats(units: object) -> None:
    with pytest.raises(TypeError):
        Money(units, "EUR")  # type: ignore[arg-type]


def test_negative_amounts_format() -> None:
    debt = Money(-125000, "EUR")
    assert (debt.text(), debt.exact_text(), str(debt)) == ("-12.50", "-12.5000", "-12.50 EUR")
    assert Money.zero("EUR").text() == "0.00"
    assert Money(-1, "EUR").exact_text() == "-0.0001"


@given(st.integers(min_value=-MAX_AMOUNT, max_value=MAX_AMOUNT), CURRENCIES)
@example(0, "EUR")
@example(-1, "EUR")
def test_of_a_decimal_is_exact_with_its_sign(units: int, currency: str) -> None:
    amount = Money(units, currency)
    assert Money.of(amount.decimal(), currency) == amount
    assert Money.of(Decimal(amount.text()), currency).cents() == amount.cents()


@pytest.mark.parametrize("amount", [Decimal("0.00001"), Decimal("NaN"), Decimal("-Infinity"),
                                    Decimal("1E+10"), Decimal("-1000000000.0001")])
def test_of_refuses_what_parse_refuses(amount: Decimal) -> None:
    with pytest.raises(Refused) as info:
        Money.of(amount, "EUR")
    assert info.value.reason == "bad_amount"
    assert Money.of(Decimal("1E+2"), "EUR") == Money(100 * MONEY_SCALE, "EUR")  # no exponent text
