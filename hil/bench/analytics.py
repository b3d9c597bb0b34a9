"""What the analytics cost at the panel: CPU seconds per 1000 readings and bytes written per
reading, with `[analytics]` on (intervals, snapshots, validation, balance, alarms in the readings'
transaction) against off, the same readings into the same store code.

A site of METERS meters read once a simulated minute (import/export active, import reactive,
voltage, current, power), one group commit per minute, a balance tree (two feeders of half the
meters each under a transformer meter), 15-minute grid. CPU time of this process on one pinned
core (the commits, fsyncs excluded from CPU time); bytes from /proc/self/io write_bytes (what
reaches the block layer: run it on the card's file system, BENCH_DIR; tmpfs reports 0) and the
database's growth. RUNS runs each, medians with min and max, one JSON object on the last line.
`*_extra_after_commit`: the same analytics in a transaction of their own after the readings'
commit (the other place they could run), to show which keeps metering cheaper.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from gateway.analytics.alarms import AlarmLimits
from gateway.analytics.balance import Node
from gateway.analytics.settings import AnalyticsSettings
from gateway.analytics.validation import Rules
from gateway.wiring.analytics import AnalyticsWiring
from storage.records import ReadingSet, StoredValue
from storage.store import Store

METERS = 100
MINUTES = 240  # four hours: 16 intervals per register, the resumes and the first snapshots
RUNS = 5
MODES = ("off", "in", "after")
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00Z, on every grid


def _write_bytes() -> int:
    with open("/proc/self/io", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    raise RuntimeError("/proc/self/io has no write_bytes line")


def _meters() -> list[str]:
    return [f"meter-{n:04d}" for n in range(METERS)]


def _settings() -> AnalyticsSettings:
    meters = _meters()
    half = len(meters) // 2
    nodes = (Node(meters[0], (meters[1], meters[half])),
             Node(meters[1], tuple(meters[2:half])), Node(meters[half], tuple(meters[half + 1:])))
    rules = Rules(limits={"voltage_l1": (Decimal(207), Decimal(253))}, spike_factor=Decimal(5),
                  stddev_k=Decimal(4), week_ratio=Decimal(3))
    alarms = AlarmLimits(contracted_power_w=Decimal(50_000), voltage_low=Decimal(207),
                         cos_phi_min=Decimal("0.9"), imbalance_percent=Decimal(20))
    return AnalyticsSettings(timezone="Europe/Berlin", default_rules=rules,
                             rules=dict.fromkeys(meters, rules),
                             alarms=dict.fromkeys(meters, alarms),
                             balance=nodes, commodities=dict.fromkeys(meters, "electricity"))


def _minute(minute: int) -> list[ReadingSet]:
    out = []
    for n, meter in enumerate(_meters()):
        kwh = Decimal(1000 + n) + Decimal(minute * (n % 7 + 1)).scaleb(-2)
        out.append(ReadingSet(meter, BASE_MS + minute * 60_000, (
            StoredValue("import_active_energy", kwh, "kWh"),
            StoredValue("export_active_energy", Decimal(n).scaleb(-1), "kWh"),
            StoredValue("import_reactive_energy", (kwh / 3).quantize(Decimal("0.001")), "kvarh"),
            StoredValue("voltage_l1", Decimal(2301 + minute % 5).scaleb(-1), "V"),
            StoredValue("current_l1", Decimal(500 + n).scaleb(-2), "A"),
            StoredValue("active_power", Decimal(1200 + n), "W"))))
    return out


def one_run(directory: str | None, mode: str) -> dict[str, float]:
    """mode: off, in (the readings' transaction, as wired) or after (a transaction of its own
    right after the readings' commit)."""
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        path = Path(tmp) / "bench.db"
        store = Store.open(path)
        for meter in _meters():
            store.upsert_meter(meter, protocol="modbus")
        hook = AnalyticsWiring(_settings(), store).on_readings if mode != "off" else None
        batches = [_minute(m) for m in range(MINUTES)]
        size0, written0, cpu0 = path.stat().st_size, _write_bytes(), time.process_time()
        for sets in batches:
            if mode == "after" and hook is not None:
                ids = store.add_readings(sets)
                with store.transaction() as tx:
                    hook(tx, [replace(r, id=i) for r, i in zip(sets, ids, strict=True)])
            else:
                store.add_readings(sets, in_transaction=hook)
        cpu = time.process_time() - cpu0
        store.close()  # the last checkpoint is part of what the card sees
        written = _write_bytes() - written0
        size = path.stat().st_size - size0
    readings = METERS * MINUTES
    return {"cpu_s_per_1000_readings": cpu * 1000 / readings,
            "bytes_written_per_reading": written / readings,
            "db_bytes_per_reading": size / readings}


def _summary(values: list[float], digits: int) -> dict[str, float]:
    return {"": round(statistics.median(values), digits), "_min": round(min(values), digits),
            "_max": round(max(values), digits)}


def measure(directory: str | None) -> dict[str, object]:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})  # one pinned core
    runs = {mode: [one_run(directory, mode) for _ in range(RUNS)] for mode in MODES}
    out: dict[str, object] = {"meters": METERS, "minutes": MINUTES, "runs": RUNS,
                              "directory": directory or tempfile.gettempdir()}
    for key, digits in (("cpu_s_per_1000_readings", 4), ("bytes_written_per_reading", 1),
                        ("db_bytes_per_reading", 1)):
        off = [r[key] for r in runs["off"]]
        on = [r[key] for r in runs["in"]]
        after = [r[key] for r in runs["after"]]
        # paired by rank: the n-th fastest run with analytics against the n-th fastest without
        extra = [b - a for a, b in zip(sorted(off), sorted(on), strict=True)]
        extra_after = [b - a for a, b in zip(sorted(off), sorted(after), strict=True)]
        for name, values in (("off", off), ("on", on), ("extra", extra),
                             ("extra_after_commit", extra_after)):
            for suffix, value in _summary(values, digits).items():
                out[f"{key}_{name}{suffix}"] = value
    return out


if __name__ == "__main__":
    sys.stdout.write(json.dumps(measure(os.environ.get("BENCH_DIR"))) + "\n")
