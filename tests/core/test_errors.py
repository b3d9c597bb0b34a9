"""The exception tree: one root in core/, every package's base under it, no stray roots."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from board.interface import BoardError
from core.errors import MeterGatewayError, Refused
from core.numbers import OutOfRange, exact_decimal
from drivers.errors import DriverError
from drivers.modbus.decode import EncodeError
from drivers.wmbus.keys import MeterKeyFileError
from gateway.config.loader import ConfigError
from gateway.console.api import ControlError
from gateway.console.shell import LoginRefused
from gateway.wiring.uplink import UplinkSetupError
from prepay.core import PrepayError
from prepay.errors import CommandRefusedError, RelayIOError, TariffError, VoucherRefused
from storage.errors import StorageError
from uplink.commands import CommandRefused
from uplink.errors import SigningKeyFileError, UplinkError
from uplink.headend.usage import HeadendUsageError

ROOT = Path(__file__).resolve().parents[2]

# Exception classes deliberately outside the root, each with the reason it must stay so.
OUTSIDE_THE_ROOT = {
    # Internal control flow of the `gateway prepay` CLI: carries an exit status, is caught two
    # frames up, and must never be caught as a gateway error by anything in between.
    "gateway.cli.cmd_prepay._CannotOpen": "internal control flow (exit status)",
}
# Public exception names defined twice; each is to be renamed (docs/architecture.md).
KNOWN_DUPLICATE_NAMES: set[str] = set()  # none left: every exception has its own name


SCAN_TIMEOUT_S = 120  # importing every module takes about a second


def _project_exceptions() -> dict[str, dict[str, object]]:
    """Every exception class defined in the project, found by a fresh interpreter."""
    done = subprocess.run([sys.executable, "-m", "tests.core.exception_scan"], cwd=ROOT,
                          capture_output=True, text=True, timeout=SCAN_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr
    found: dict[str, dict[str, object]] = json.loads(done.stdout)
    return found


@pytest.fixture(scope="module")
def project_exceptions() -> dict[str, dict[str, object]]:
    return _project_exceptions()


@pytest.mark.parametrize("root", [
    DriverError, StorageError, UplinkError, BoardError, ConfigError, ControlError,
    UplinkSetupError, LoginRefused, TariffError, OutOfRange, EncodeError, MeterKeyFileError,
    SigningKeyFileError, HeadendUsageError, Refused, PrepayError, RelayIOError,
])
def test_package_roots_are_under_the_one_root(root: type[Exception]) -> None:
    assert issubclass(root, MeterGatewayError)


def test_every_exception_class_of_the_project_is_under_the_root(
    project_exceptions: dict[str, dict[str, object]],
) -> None:
    found = project_exceptions
    assert found["drivers.errors.FrameError"]["root"]  # the walk did see the project
    stray = sorted(name for name, info in found.items()
                   if not info["root"] and name not in OUTSIDE_THE_ROOT)
    assert stray == [], (
        f"{stray}: derive from core.errors.MeterGatewayError (or the package's base), "
        "or document why not in OUTSIDE_THE_ROOT")
    assert set(OUTSIDE_THE_ROOT) <= set(found), "OUTSIDE_THE_ROOT names a class that is gone"


def test_exception_names_are_unique(project_exceptions: dict[str, dict[str, object]]) -> None:
    by_name: dict[str, list[str]] = {}
    for qualified, info in project_exceptions.items():
        name = str(info["name"])
        if not name.startswith("_"):
            by_name.setdefault(name, []).append(qualified)
    duplicates = {name for name, where in by_name.items() if len(where) > 1}
    assert duplicates <= KNOWN_DUPLICATE_NAMES, {n: by_name[n] for n in duplicates}
    assert "KeyFileError" not in by_name


def test_value_errors_stay_value_errors() -> None:
    # Callers that catch ValueError (JSON decoding, the console codec) still catch these.
    with pytest.raises(ValueError) as info:
        exact_decimal("1E+999")
    assert isinstance(info.value, MeterGatewayError)
    assert issubclass(OutOfRange, ValueError) and issubclass(EncodeError, ValueError)


def test_refused_carries_a_reason_and_a_detail() -> None:
    refused = Refused("bad_amount", "'1e3' is not a plain decimal")
    assert (refused.reason, refused.detail) == ("bad_amount", "'1e3' is not a plain decimal")
    assert str(refused) == "bad_amount: '1e3' is not a plain decimal"
    assert str(Refused("unknown_op")) == "unknown_op"
    assert Refused("unknown_op").is_coded
    assert not Refused("meter shop-12 did not answer").is_coded


@pytest.mark.parametrize("refusal", [
    CommandRefused("unknown_meter"), CommandRefusedError("bad_txid"),
    VoucherRefused("expired", "expired at 5"),
])
def test_uplink_and_prepay_refusals_are_one_refused(refusal: Refused) -> None:
    assert isinstance(refusal, Refused) and refusal.is_coded


def test_refusal_messages_are_unchanged() -> None:
    assert str(CommandRefused("unknown_meter")) == "unknown_meter"
    assert str(CommandRefusedError("bad_txid")) == "bad_txid"
    assert str(VoucherRefused("expired", "expired at 5")) == "expired: expired at 5"
    assert VoucherRefused("expired", "expired at 5").reason == "expired"
    assert isinstance(CommandRefused("x"), UplinkError)


PACKAGES = ("core", "gateway", "drivers", "prepay", "storage", "uplink", "board")
CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _refusal_names() -> set[str]:
    """The names of every class the project's source derives from `Refused`, read from the
    source (not from what happens to be imported, which depends on the tests run before)."""
    bases: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    bases.setdefault(node.name, set()).update(
                        getattr(b, "id", None) or getattr(b, "attr", "") for b in node.bases)
    names = {"Refused"}
    while True:
        more = {name for name, of in bases.items() if of & names} - names
        if not more:
            return names
        names |= more


def _free_text_reason(node: ast.AST, names: set[str]) -> bool:
    """A call of a refusal whose written first argument (the reason) is not a code."""
    if not (isinstance(node, ast.Call) and node.args):
        return False
    name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
    if name not in names or name == "LoginRefused":  # its first argument is the message
        return False
    first = node.args[0]
    if isinstance(first, ast.JoinedStr):  # f"bad_{key}" builds a code; f"meter {m} ..." not
        written = "".join(str(v.value) for v in first.values if isinstance(v, ast.Constant))
        return re.fullmatch(r"[a-z0-9_]*", written) is None
    return isinstance(first, ast.Constant) and isinstance(first.value, str) \
        and CODE.fullmatch(first.value) is None


def test_every_refusal_raised_with_a_written_reason_uses_a_code() -> None:
    names = _refusal_names()
    assert {"CommandRefused", "VoucherRefused", "LoginRefused", "_RoleRefused"} <= names
    free = [f"{path.relative_to(ROOT)}:{node.lineno}"
            for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if _free_text_reason(node, names)]
    assert free == [], "give these a snake_case reason and the words as the detail"
