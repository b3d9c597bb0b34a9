"""The real `gateway run` as a child process, and waits for what it stored.

    with GatewayProcess(config, tmp_path / "gateway.log") as gw:
        counts = gw.wait_for_readings(db, ["shop-01"], at_least=2)
        assert gw.stop() == 0

A fault point (`crash_at="build:3"`, see tests/harness/crash_points.py) runs the same entry
point with one SIGKILL armed inside it. The database is read through its own read-only
connection: the running gateway keeps writing (WAL readers never block it).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from tests.harness.eventually import eventually

ROOT = Path(__file__).resolve().parents[2]
# Bounds for broken waits on a loaded two-core CI machine, never speed requirements.
READ_DEADLINE_S = 90.0
STOP_TIMEOUT_S = 20.0


def stored_counts(db: Path) -> dict[str, int]:
    """Readings stored per meter id (empty while the database does not exist yet)."""
    if not db.exists():
        return {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            rows = conn.execute("SELECT m.id, count(*) FROM readings r JOIN meters m "
                                "ON m.mid = r.meter GROUP BY m.id").fetchall()
        except sqlite3.OperationalError:  # created, not migrated yet
            return {}
    return {str(meter): int(n) for meter, n in rows}


def query(db: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of one read-only query on the gateway's database."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        return list(conn.execute(sql, params).fetchall())


class GatewayProcess:
    """`python -m gateway.cli run --config CONFIG`; stderr (the JSON log) goes to `log`."""

    def __init__(self, config: Path, log: Path, *, crash_at: str | None = None,
                 stdout: int | IO[bytes] = subprocess.DEVNULL) -> None:
        self.config = config
        self.log = log
        self.crash_at = crash_at
        self._stdout = stdout
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        if self.crash_at is None:
            return [sys.executable, "-m", "gateway.cli", "run", "--config", str(self.config)]
        return [sys.executable, "-m", "tests.harness.crash_points", self.crash_at,
                "run", "--config", str(self.config)]

    def start(self) -> GatewayProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=self._stdout, stderr=log,
                                         cwd=self.config.parent, env=env)
        return self

    def __enter__(self) -> GatewayProcess:
        return self if self.proc is not None else self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.running:
            self.kill()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _live(self) -> subprocess.Popen[bytes]:
        assert self.proc is not None, "start() the gateway first"
        return self.proc

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def assert_running(self) -> None:
        """AssertionError with the log's tail when the process has exited."""
        code = self._live().poll()
        if code is not None:
            raise AssertionError(f"gateway exited with {code}:\n{self.log_tail()}")

    def wait_for_readings(self, db: Path, meters: list[str], at_least: int,
                          deadline_s: float = READ_DEADLINE_S) -> dict[str, int]:
        """Wait until each of `meters` has `at_least` readings stored; returns the counts."""
        def enough() -> dict[str, int] | None:
            self.assert_running()
            counts = stored_counts(db)
            missing = {m: counts.get(m, 0) for m in meters if counts.get(m, 0) < at_least}
            assert not missing, f"readings still missing: {missing} (stored: {counts})"
            return counts
        return eventually(enough, deadline_s, "stored readings")  # type: ignore[arg-type]

    def wait_exit(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """The exit status (negative: the signal that killed it)."""
        return self._live().wait(timeout_s)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM (a clean stop); the exit status."""
        self._live().send_signal(signal.SIGTERM)
        return self.wait_exit(timeout_s)

    def kill(self) -> int:
        """SIGKILL (a power cut, as far as the database is concerned); the exit status."""
        self._live().kill()
        return self.wait_exit()
