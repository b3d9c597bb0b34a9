"""Crash safety: a writer SIGKILLed at random moments loses nothing it reported committed."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from storage.store import Store

CHILD = Path(__file__).with_name("powercut_child.py")
KILLS = 10
# The child must print something within this long, or the test fails instead of hanging.
CHILD_START_TIMEOUT_S = 30


def _run_and_kill(path: Path, rng: random.Random) -> tuple[set[int], set[int]]:
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    lines = []
    try:
        for _ in range(rng.randint(2, 60)):
            line = child.stdout.readline()
            assert line, f"child ended early with code {child.poll()}"
            lines.append(line)
        time.sleep(rng.random() * 0.02)  # land the kill anywhere inside the next transaction
    finally:
        os.kill(child.pid, signal.SIGKILL)
        lines += child.stdout.read().splitlines(keepends=True)
        child.wait(CHILD_START_TIMEOUT_S)
    readings: set[int] = set()
    events: set[int] = set()
    for line in lines:
        if not line.endswith("\n"):
            continue  # cut mid-print: ids of an unreported commit prove nothing
        kind, *ids = line.split()
        (readings if kind == "R" else events).update(int(i) for i in ids)
    return readings, events


def _check(path: Path, readings: set[int], events: set[int]) -> None:
    store = Store.open(path, create=False, verify=True)  # raises StoreCorrupt if damaged
    conn: sqlite3.Connection = store.db.conn
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    stored_readings = {r for (r,) in conn.execute("SELECT id FROM readings")}
    stored_events = {e for (e,) in conn.execute("SELECT id FROM events")}
    assert readings <= stored_readings
    assert events <= stored_events
    outbox = set(conn.execute("SELECT kind, ref FROM outbox").fetchall())
    assert outbox == {("reading", r) for r in stored_readings} | {
        ("event", e) for e in stored_events
    }
    store.close()


def test_sigkill_at_random_moments_loses_no_committed_row(tmp_path: Path) -> None:
    rng = random.Random(20261123)
    path = tmp_path / "powercut.db"
    reported_readings: set[int] = set()
    reported_events: set[int] = set()
    for _ in range(KILLS):
        readings, events = _run_and_kill(path, rng)
        reported_readings |= readings
        reported_events |= events
        _check(path, reported_readings, reported_events)
    assert reported_readings and reported_events
