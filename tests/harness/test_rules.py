"""Rules for the tests themselves: production code is reached through its public names."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# (test file, private name) pairs still imported, each with what has to happen.
KNOWN_PRIVATE_IMPORTS: dict[tuple[str, str], str] = {}


def private_imports() -> set[tuple[str, str]]:
    found = set()
    for top in ("tests", "hil"):
        for path in sorted((ROOT / top).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                    found |= {(str(path.relative_to(ROOT)), alias.name) for alias in node.names
                              if alias.name.startswith("_")}
    return found


def test_no_test_imports_a_private_name() -> None:
    found = private_imports()
    assert found - set(KNOWN_PRIVATE_IMPORTS) == set(), (
        "make the name public (tests use production code through its API)")
    assert set(KNOWN_PRIVATE_IMPORTS) <= found, "KNOWN_PRIVATE_IMPORTS names a fixed import"


RUN_CALL = "asyncio." + "run("  # spelt apart so that this file does not match itself
# Files that may call asyncio.run themselves: processes of their own, not tests.
OWN_PROCESSES = {
    "tests/gateway/console/serve_pty.py": "the console server a pty test starts as a child",
    "hil/test_prepay_powercut.py": "its worker() is the child process the test SIGKILLs",
    "tests/harness/lingering.py": "run_checked() itself",
}


def test_tests_drive_their_own_loops_through_run_checked() -> None:
    calls = {str(path.relative_to(ROOT)) for top in ("tests", "hil")
             for path in sorted((ROOT / top).rglob("*.py"))
             if RUN_CALL in path.read_text(encoding="utf-8")
             and not path.is_relative_to(ROOT / "hil" / "bench")}
    assert calls - set(OWN_PROCESSES) == set(), (
        "a sync test runs its loop with tests.harness.lingering.run_checked (leak-checked)")
