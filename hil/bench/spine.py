"""Spine bench: 200 simulated Modbus meters on 4 buses read by the real `gateway run` process.

Prints JSON: values stored per second, gateway CPU seconds per 1000 values, peak RSS, and bytes
the gateway process wrote to disk per value (/proc/<pid>/io write_bytes: WAL, checkpoints and
the database file). A value ("reading") is one quantity of one meter at one instant.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from drivers.modbus.profiles import get_profile
from drivers.modbus.site import large_site, site_config, start_simulators

BUSES, METERS_PER_BUS = 4, 50
WARMUP_S = 15.0
MEASURE_S = 60.0
POLL_INTERVAL_S = 5  # 200 meters every 5 s: about 3000 values/s, a demanding site


def proc_figures(pid: int) -> dict[str, int]:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return {"cpu_ms": (int(stat[11]) + int(stat[12])) * 1000 // ticks,
            "write_bytes": int(io["write_bytes"]),
            "hwm_kb": int(status["VmHWM"].split()[0])}


def stored_values(db: Path, per_meter: dict[str, int]) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        rows = conn.execute("SELECT m.id, count(*) FROM readings r JOIN meters m "
                            "ON m.mid = r.meter GROUP BY m.id").fetchall()
    return sum(count * per_meter[meter] for meter, count in rows)


def measure(poll_interval_s: int, warmup_s: float, measure_s: float) -> dict[str, float]:
    """Run the real gateway against the bench site; figures of the measured window."""
    site = large_site(BUSES, METERS_PER_BUS)
    per_meter = {m.id: len(get_profile(m.profile).quantities) for b in site for m in b.meters}
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp:
        state = Path(tmp)
        sim = start_simulators(site, state / "sim")
        config = state / "site.toml"
        config.write_text(site_config(sim, state, poll_interval_s=poll_interval_s))
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "--config",
                                 str(config)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            time.sleep(warmup_s)
            db = state / "gateway.db"
            before, v0, t0 = proc_figures(proc.pid), stored_values(db, per_meter), time.time()
            time.sleep(measure_s)
            after, v1, t1 = proc_figures(proc.pid), stored_values(db, per_meter), time.time()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            sim.stop()
    values, seconds = v1 - v0, t1 - t0
    written = after["write_bytes"] - before["write_bytes"]
    return {
        "measured_s": round(seconds, 1), "values_stored": values,
        "readings_stored_per_s": round(values / seconds, 1),
        "cpu_s_per_1000_readings": round((after["cpu_ms"] - before["cpu_ms"]) / values, 4),
        "peak_rss_mb": round(after["hwm_kb"] / 1024, 1),
        "bytes_written_per_reading": round(written / values, 1),
        "bytes_written_per_hour": round(written * 3600 / seconds),
    }


def main() -> None:
    busy = measure(POLL_INTERVAL_S, WARMUP_S, MEASURE_S)
    # the SD-card figure: the same site polled once a minute, three whole minutes measured
    minute = measure(60, 5.0, 180.0)
    print(json.dumps({
        "meters": BUSES * METERS_PER_BUS, "buses": BUSES, "poll_interval_s": POLL_INTERVAL_S,
        **busy,
        "site_polled_every_60s": {"bytes_written_per_hour": minute["bytes_written_per_hour"],
                                  "bytes_written_per_reading":
                                      minute["bytes_written_per_reading"],
                                  "readings_stored_per_s": minute["readings_stored_per_s"]},
    }))


if __name__ == "__main__":
    main()
