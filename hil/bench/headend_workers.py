"""Head-end workers into PostgreSQL: values/s with 1 and with 2 `serve` processes on one
shared subscription (verify + chain check + store + ack), and the scaling ratio.

A simulated fleet (100 gateways x 200 meters x 8 minutes of 15 values, built once by the real
batcher, 2.4 M values, each gateway on its own MQTT connection) is published through a local
Mosquitto into a local PostgreSQL (both started per run, fsync on). The fleet publisher,
broker and database share the machine with the workers, so on a 2-core machine the ratio is
bounded by the cores, not by the head-end. `HEADEND_BENCH_ROUNDS` rounds (default 3) of four
runs, alternated so that all see the same drift of the machine's load: 1 and 2 workers with
one store connection each (`w1_c1`, `w2_c1`: the scaling of workers), then with two
(`w1_c2`, `w2_c2`: serve --store-connections 2, a worker not bound by one transaction's
latency). Prints JSON: per round and run values/s, CPU seconds of every process, values per
worker CPU-second, the cores kept busy by the test and by the rest of the machine
(`other_cores_busy`), the load average; then medians with min and max.
"""

import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from uplink.headend.fleet import FleetSpec, build_fleet
from uplink.headend.loadtest import LoadOptions, run

SPEC = FleetSpec(gateways=100, meters=200, minutes=8)
ROUNDS = int(os.environ.get("HEADEND_BENCH_ROUNDS", "3"))
# run name -> (workers, store connections per worker)
RUNS = {"w1_c1": (1, 1), "w2_c1": (2, 1), "w1_c2": (1, 2), "w2_c2": (2, 2)}
KEYS = ("values_per_s", "values_per_s_per_worker", "seconds", "resent", "cpu_s",
        "other_cores_busy")


def one_run(fleet: list[Any], workers: int, connections: int) -> dict[str, Any]:
    load = os.getloadavg()[0]
    result = run(LoadOptions(SPEC, None, None, workers, store_connections=connections), fleet)
    assert result["ok"], result
    figures = {k: result[k] for k in KEYS}
    cpu = result["cpu_s"]
    worker_cpu = sum(v for k, v in cpu.items() if k.startswith("worker_"))
    # values per CPU-second of the workers: what one worker does with a core of its own
    figures["values_per_worker_cpu_s"] = round(result["values"] / max(worker_cpu, 1e-6))
    # cores busy during the run, all processes of the test together (the machine's limit)
    figures["cores_busy"] = round(sum(cpu.values()) / result["seconds"], 2)
    figures["loadavg_1min_before"] = round(load, 2)
    return figures


def spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
            "max": round(max(values), 2)}


def main() -> None:
    fleet = build_fleet(SPEC)
    machine_load = os.getloadavg()
    rounds = []
    for _ in range(ROUNDS):
        runs: dict[str, Any] = {name: one_run(fleet, *wc) for name, wc in RUNS.items()}
        for c in ("c1", "c2"):
            runs[f"scaling_2_over_1_{c}"] = round(
                runs[f"w2_{c}"]["values_per_s"] / runs[f"w1_{c}"]["values_per_s"], 2)
        rounds.append(runs)
    summary: dict[str, Any] = {}
    for name in RUNS:
        for key in ("values_per_s", "values_per_worker_cpu_s", "cores_busy",
                    "other_cores_busy"):
            summary[f"{name}_{key}"] = spread([r[name][key] for r in rounds])
    for c in ("c1", "c2"):
        summary[f"scaling_2_over_1_{c}"] = spread([r[f"scaling_2_over_1_{c}"] for r in rounds])
    sys.stdout.write(json.dumps({
        "rounds": rounds, "loadavg_before_bench": [round(x, 2) for x in machine_load],
        "cores": os.cpu_count(), **summary, "target_values_per_s_1_worker": 500_000,
        "target_scaling": 1.7}) + "\n")


if __name__ == "__main__":
    main()
