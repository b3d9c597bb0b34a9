"""Spine bench: simulated Modbus meters read by the real `gateway run` process, uplink on.

Every site is one real buses allow: the simulators answer at line speed plus a meter's
turnaround (drivers/modbus/sim.py, Pace), and the bench prints each site's bus utilisation.
Sites: 10 and 100 meters of about 10 values, polled every second, with the uplink to a local
Mosquitto and an acking `gateway-headend serve` (and 100 meters without the uplink, apart);
200 meters on 4 RS-485 lines at 9600 baud polled once a minute. Figures come from
/proc/<pid>/io write_bytes of the gateway (WAL, checkpoints, database file), CPU ticks and
VmHWM; each is the median of RUNS runs with its min and max. A value is one quantity of one
meter at one instant.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from drivers.modbus.profiles import get_profile
from drivers.modbus.sim import Pace, plan_for
from drivers.modbus.site import SimBus, SimMeter, site_config, start_simulators
from uplink.keys import create_private_key, public_pem
from uplink.localbroker import Mosquitto

RUNS = 3
GW = "gw-bench"
TURNAROUND_MS = 20  # a typical meter's answer time
# Modbus TCP: no serial line, only the meter's turnaround (the wire time is negligible).
TCP_BAUD = 10_000_000
# sdm120 (13 values) and abb_b23 (7) alternate: 10 values a meter, as in the comparison.
TEN_VALUE_PROFILES = ("eastron_sdm120", "abb_b23")
MIXED_PROFILES = ("eastron_sdm630", "gavazzi_em340", "eastron_sdm120", "abb_b23")
# The master's silence between two frames (3.5 characters at 9600 baud, rounded up).
INTER_FRAME_S = 0.004


@dataclass(frozen=True)
class Variant:
    name: str
    buses: tuple[SimBus, ...]
    baud: int
    poll_s: int
    uplink: bool
    warmup_s: float
    measure_s: float


def tcp_site(meters: int, per_bus: int) -> tuple[SimBus, ...]:
    return tuple(SimBus(f"tcp-{b + 1}", "tcp", tuple(
        SimMeter(f"m{b + 1:02d}-{a:02d}", a, TEN_VALUE_PROFILES[a % 2], b * 100 + a)
        for a in range(1, per_bus + 1))) for b in range(meters // per_bus))


def rtu_site(buses: int, per_bus: int) -> tuple[SimBus, ...]:
    return tuple(SimBus(f"rs485-{b + 1}", "rtu", tuple(
        SimMeter(f"m{b + 1:02d}-{a:03d}", a, MIXED_PROFILES[a % 4], b * 1000 + a)
        for a in range(1, per_bus + 1))) for b in range(buses))


VARIANTS = (
    Variant("uplink_n10", tcp_site(10, 5), TCP_BAUD, 1, True, 15.0, 30.0),
    Variant("uplink_n100", tcp_site(100, 5), TCP_BAUD, 1, True, 15.0, 30.0),
    Variant("no_uplink_n100", tcp_site(100, 5), TCP_BAUD, 1, False, 15.0, 30.0),
    Variant("uplink_200_meters_1min", rtu_site(4, 50), 9600, 60, True, 10.0, 120.0),
)


def bus_utilisation(variant: Variant) -> float:
    """Wire and turnaround time of one poll round of the busiest bus / the poll interval."""
    pace = Pace(variant.baud, TURNAROUND_MS / 1000)
    rounds = [sum(pace.answer_s(r.count) + INTER_FRAME_S for m in bus.meters
                  for r in plan_for(get_profile(m.profile)).requests) for bus in variant.buses]
    return max(rounds) / variant.poll_s


def proc_figures(pid: int) -> dict[str, int]:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return {"cpu_ms": (int(stat[11]) + int(stat[12])) * 1000 // ticks,
            "write_bytes": int(io["write_bytes"]),
            "hwm_kb": int(status["VmHWM"].split()[0]), "rss_kb": int(status["VmRSS"].split()[0])}


def stored_values(db: Path, per_meter: dict[str, int]) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        rows = conn.execute("SELECT m.id, count(*) FROM readings r JOIN meters m "
                            "ON m.mid = r.meter GROUP BY m.id").fetchall()
    return sum(count * per_meter[meter] for meter, count in rows)


@contextmanager
def uplink_side(state: Path) -> Iterator[str]:
    """Mosquitto and an acking head-end; yields the gateway's [uplink] section."""
    (state / "broker").mkdir()
    broker = Mosquitto(state / "broker").start()
    gw_key, he_key = create_private_key(state / "gw.pem"), create_private_key(state / "he.pem")
    (state / "gw_pub.pem").write_text(public_pem(gw_key))
    (state / "he_pub.pem").write_text(public_pem(he_key))
    headend = subprocess.Popen(
        [sys.executable, "-m", "uplink.headend.cli", "serve", "--broker", broker.url,
         "--db", str(state / "headend.db"), "--key", str(state / "he.pem"),
         "--enrol", f"{GW}={state / 'gw_pub.pem'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield (f'\n[uplink]\nbroker_url = "{broker.url}"\nkey_file = "{state / "gw.pem"}"\n'
               f'server_public_key = "{state / "he_pub.pem"}"\n')
    finally:
        headend.terminate()
        headend.wait(30)
        broker.stop()


def measure(variant: Variant) -> dict[str, float]:
    """One run of the real gateway on the variant's site; figures of the measured window."""
    per_meter = {m.id: len(get_profile(m.profile).quantities)
                 for b in variant.buses for m in b.meters}
    pace = {"baudrate": variant.baud, "turnaround_ms": TURNAROUND_MS}
    # in the working directory, not /tmp: on the Pi /tmp is tmpfs, where writes count zero
    with tempfile.TemporaryDirectory(prefix="gw-bench-", dir=Path.cwd()) as tmp:
        state = Path(tmp)
        sim = start_simulators(variant.buses, state / "sim", pace=pace)
        with uplink_side(state) as uplink:
            config = state / "site.toml"
            config.write_text(site_config(sim, state, gateway_id=GW, poll_interval_s=variant.poll_s,
                                          baudrate=min(variant.baud, 115200),
                                          extra=uplink if variant.uplink else ""))
            try:
                return _window(config, state / "gateway.db", per_meter, variant)
            finally:
                sim.stop()


def _window(config: Path, db: Path, per_meter: dict[str, int],
            variant: Variant) -> dict[str, float]:
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "--config",
                             str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(variant.warmup_s)
        before, v0, t0 = proc_figures(proc.pid), stored_values(db, per_meter), time.time()
        time.sleep(variant.measure_s)
        after, v1, t1 = proc_figures(proc.pid), stored_values(db, per_meter), time.time()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    values, seconds = v1 - v0, t1 - t0
    written = after["write_bytes"] - before["write_bytes"]
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        # with the uplink on, a few seconds of records at most: proof the head-end acked
        backlog = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    return {"values_per_s": values / seconds, "outbox_rows_at_end": backlog,
            "bytes_per_value": written / max(1, values),
            "mb_written_per_hour": written * 3600 / seconds / 1e6,
            "cpu_s_per_1000_values": (after["cpu_ms"] - before["cpu_ms"]) / max(1, values),
            "rss_mb": after["rss_kb"] / 1024, "peak_rss_mb": after["hwm_kb"] / 1024}


def summary(runs: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in runs[0]:
        values = [r[key] for r in runs]
        out[key] = round(statistics.median(values), 2)
        out[f"{key}_min"], out[f"{key}_max"] = round(min(values), 2), round(max(values), 2)
    return out


def main() -> None:
    result: dict[str, object] = {"runs": RUNS, "turnaround_ms": TURNAROUND_MS,
                                 "load_average_at_start": os.getloadavg()[0]}
    for variant in VARIANTS:
        figures = summary([measure(variant) for _ in range(RUNS)])
        result[variant.name] = {"meters": sum(len(b.meters) for b in variant.buses),
                                "buses": len(variant.buses), "baud": variant.baud,
                                "poll_interval_s": variant.poll_s,
                                "bus_utilisation": round(bus_utilisation(variant), 2),
                                **figures}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
