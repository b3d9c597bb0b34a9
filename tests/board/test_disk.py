"""Start-up disk check and the persisted error ring."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from board.disk import ErrorRing, startup_check
from board.interface import BoardError


def test_healthy_data_dir_with_database(tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.close()
    check = startup_check(tmp_path, db, min_free_bytes=1)
    assert check.ok
    assert check.database_bytes is not None and check.database_bytes > 0
    assert 0 < check.free_bytes <= check.total_bytes


def test_first_start_has_no_database(tmp_path: Path) -> None:
    check = startup_check(tmp_path, tmp_path / "gateway.db", min_free_bytes=1)
    assert check.ok and check.database_bytes is None


def test_problems_are_named(tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    db.write_bytes(b"PK\x03\x04 not a database")
    check = startup_check(tmp_path, db, min_free_bytes=1 << 62)
    assert not check.ok
    assert any("bytes free" in p for p in check.problems)
    assert any("not an SQLite file" in p and "gateway.db" in p for p in check.problems)
    db.write_bytes(b"")
    assert any("empty file" in p for p in startup_check(tmp_path, db, min_free_bytes=1).problems)
    with pytest.raises(BoardError, match="absent"):
        startup_check(tmp_path / "absent", db)


def make_logger(ring: ErrorRing) -> logging.Logger:
    logger = logging.getLogger(f"test.ring.{id(ring)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(ring)
    return logger


def test_ring_keeps_recent_warnings_and_rate_limits_writes(tmp_path: Path) -> None:
    path = tmp_path / "errors.jsonl"
    now = [0.0]
    ring = ErrorRing(path, size=3, flush_s=300, clock=lambda: now[0])
    log = make_logger(ring)
    log.info("ignored")
    for i in range(5):
        log.warning("meter_timeout", extra={"meter": f"m{i}"})
    assert not path.exists()  # nothing written before the flush interval
    now[0] = 301.0
    log.error("store_full")
    assert [r["meter"] for r in ring.recent()] == ["m3", "m4", None]
    assert len(path.read_text().splitlines()) == 3
    log.removeHandler(ring)
    ring.close()


def test_ring_survives_restart_and_torn_lines(tmp_path: Path) -> None:
    path = tmp_path / "errors.jsonl"
    ring = ErrorRing(path, flush_s=0)
    log = make_logger(ring)
    log.error("watchdog_missed", extra={"meter": None})
    ring.close()
    with open(path, "a") as handle:
        handle.write('{"event": "torn')
    again = ErrorRing(path)
    assert [r["event"] for r in again.recent()] == ["watchdog_missed"]
