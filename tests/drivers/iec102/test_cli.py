"""`gateway iec102 read` and `gateway iec102 profile` as a technician runs them: the real command
against the simulated meter on TCP and on a pty; `decode` of every frame the session uses."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from drivers.iec102.sim import QUARTER, SimMeter, absolute
from drivers.iec102.simhost import PtySim, TcpSimThread

GATEWAY = str(Path(sys.executable).with_name("gateway"))
ORIGIN = dt.datetime(2026, 10, 1)
NOW = dt.datetime(2026, 12, 6, 12, 5)
LINE = ["--link-address", "3", "--measuring-point", "7", "--password", "1234"]


def _meter() -> SimMeter:
    return SimMeter(3, 7, 1234, ORIGIN, lambda: NOW)


def _gateway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GATEWAY, "iec102", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_profile_over_tcp() -> None:
    with TcpSimThread(_meter()) as sim:
        done = _gateway("profile", "--host", "127.0.0.1", "--tcp-port", str(sim.port), *LINE,
                        "--from", "2026-12-06T10:00", "--to", "2026-12-06T12:00",
                        "--incremental")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    active = [row for row in document["totals"] if row["address"] == 1]
    assert [row["period_end"]["time"] for row in active] == [
        "2026-12-06T10:00:00+01:00", "2026-12-06T11:00:00+01:00", "2026-12-06T12:00:00+01:00"]
    end = (dt.datetime(2026, 12, 6, 12) - ORIGIN) // QUARTER
    assert active[-1]["value"] == str(absolute(1, end) - absolute(1, end - 4))


def test_read_over_a_pty_and_a_wrong_password() -> None:
    with PtySim(_meter()) as sim:
        done = _gateway("read", "--port", sim.port_path, *LINE)
        refused = _gateway("read", "--port", sim.port_path, *LINE[:-1], "99")
    assert done.returncode == 0, done.stderr
    samples = json.loads(done.stdout)["samples"]
    values = {s["quantity"]: s["value"] for s in samples if "at_ms" not in s}
    assert values["meter_datetime"] == "2026-12-06T12:05:00+01:00"
    # the meter's own records (the last 48 hours' profile, the closed months) with their instant
    assert {s["series"] for s in samples if "at_ms" in s} == {"load_profile", "billing"}
    assert refused.returncode == 1 and "refused" in refused.stderr
