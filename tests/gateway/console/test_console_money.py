"""Money in the console: amounts typed and shown through core.money (one scale, one set of
bounds), as the console always showed and took them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.console import format as fmt
from gateway.console.api import Role
from gateway.console.commands import COMMANDS
from gateway.console.context import Context, UsageError
from tests.gateway.console.memory_api import InMemoryApi


class _Yes:
    """A terminal that answers yes and keeps what was written."""

    def __init__(self) -> None:
        self.out: list[str] = []

    def write(self, text: str) -> None:
        self.out.append(text)

    async def ask(self, prompt: str) -> str | None:
        self.out.append(prompt)
        return "yes"

    async def interrupted(self, timeout_s: float) -> bool:
        return False


def _context() -> tuple[Context, InMemoryApi, _Yes]:
    api, term = InMemoryApi(), _Yes()
    return Context(api, term, "tech", Role.TECHNICIAN, [], []), api, term  # type: ignore[arg-type]


@given(st.integers(min_value=-(10**11), max_value=10**11))
@example(-1)
@example(0)
def test_shown_money_is_cents_as_before(cents: int) -> None:
    amount = Decimal(cents).scaleb(-2)
    assert fmt.money(amount, "EUR") == f"{amount:.2f} EUR"
    assert fmt.money(amount, "") == f"{amount:.2f}"
    assert fmt.money(None, "EUR") == "-"


def test_shown_money_rounds_half_even_and_keeps_the_configured_code() -> None:
    assert fmt.money(Decimal("0.125"), "EUR") == "0.12 EUR"
    assert fmt.money(Decimal("0.135"), "euro") == "0.14 euro"  # a display never refuses a code
    assert fmt.money(Decimal(0), "KES") == "0.00 KES"


@pytest.mark.parametrize(("typed", "sent"), [("10", "10.00"), ("25.5", "25.50"),
                                             ("0.01", "0.01"), ("100000", "100000.00"),
                                             ("25.000", "25.00")])
async def test_a_top_up_sends_whole_cents(typed: str, sent: str) -> None:
    ctx, api, term = _context()
    await COMMANDS["topup"].handler(ctx, ["shop-14", typed, "receipt-1"])
    assert str(api.credit_by_meter["shop-14"]) == sent
    assert f"Add {Decimal(sent)} to the credit of shop-14?" in "".join(term.out)


@pytest.mark.parametrize(("typed", "says"), [
    ("ten", "not a number"), ("-5", "not a number"), ("1e2", "not a number"),
    ("25.00001", "not a number"), ("0", "above 0 and at most 100000.00"),
    ("100000.01", "at most 100000.00"), ("25.001", "cents at most"),
])
async def test_a_top_up_refuses_what_the_ledger_would_not_take_or_is_a_typo(
        typed: str, says: str) -> None:
    ctx, api, _term = _context()
    with pytest.raises(UsageError, match=says):
        await COMMANDS["topup"].handler(ctx, ["shop-14", typed, "receipt-1"])
    assert api.credit_by_meter["shop-14"] == Decimal("0.00")
