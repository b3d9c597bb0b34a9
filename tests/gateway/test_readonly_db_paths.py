"""The gateway's read-only commands refuse a database path that is not a store file.

A mistyped `--db` must fail with one line naming the path and leave nothing behind: a new
empty store there would look like a gateway that never stored anything.
"""

from pathlib import Path

import pytest

from gateway.cli import main as cli

READERS = [["readings", "--meter", "m1"], ["prepay", "account", "--meter", "m1"],
           ["prepay", "ledger", "--meter", "m1"]]


@pytest.mark.parametrize("argv", READERS, ids=lambda a: " ".join(a[:2]))
def test_missing_database_is_refused_and_not_created(tmp_path: Path, argv: list[str],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    typo = tmp_path / "typo.db"
    assert cli.main([*argv, "--db", str(typo)]) != 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1 and str(typo) in captured.err
    assert not typo.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", READERS, ids=lambda a: " ".join(a[:2]))
def test_directory_as_database_is_refused(tmp_path: Path, argv: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*argv, "--db", str(tmp_path)]) != 0
    captured = capsys.readouterr()
    assert len(captured.err.splitlines()) == 1 and str(tmp_path) in captured.err
    assert list(tmp_path.iterdir()) == []
