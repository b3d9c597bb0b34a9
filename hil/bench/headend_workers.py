"""Head-end workers into PostgreSQL: values/s with 1 and with 2 `serve` processes on one
shared subscription (verify + chain check + store + ack), and the scaling ratio.

A simulated fleet (100 gateways x 200 meters x 8 minutes of 15 values, built by the real
batcher, 2.4 M values) is published through a local Mosquitto into a local PostgreSQL (both
started here, fsync on). The fleet publisher, broker and database share the machine with the
workers, so on a 2-core machine the ratio is bounded by the cores, not by the head-end.
Prints JSON: per run values_per_s, values_per_s_per_worker, the CPU seconds of every process
(workers, database, broker, fleet), values per worker CPU-second and the cores kept busy, and
scaling_2_over_1.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from uplink.headend.fleet import FleetSpec, build_fleet
from uplink.headend.loadtest import LoadOptions, run

SPEC = FleetSpec(gateways=100, meters=200, minutes=8)
KEYS = ("ok", "batches", "values", "seconds", "values_per_s", "values_per_s_per_worker",
        "resent", "missing_records", "duplicate_records", "cpu_s")


def main() -> None:
    fleet = build_fleet(SPEC)
    runs = {}
    for workers in (1, 2):
        result = run(LoadOptions(SPEC, None, None, workers), fleet)
        assert result["ok"], result
        run_figures = {k: result[k] for k in KEYS}
        cpu = result["cpu_s"]
        worker_cpu = sum(v for k, v in cpu.items() if k.startswith("worker_"))
        # values per CPU-second of the workers: what one worker does with a core of its own
        run_figures["values_per_worker_cpu_s"] = round(result["values"] / max(worker_cpu, 1e-6))
        # cores busy during the run, all processes of the test together (the machine's limit)
        run_figures["cores_busy"] = round(sum(cpu.values()) / result["seconds"], 2)
        runs[f"workers_{workers}"] = run_figures
    ratio = runs["workers_2"]["values_per_s"] / runs["workers_1"]["values_per_s"]
    sys.stdout.write(json.dumps({**runs, "scaling_2_over_1": round(ratio, 2),
                                 "target_values_per_s_1_worker": 500_000,
                                 "target_scaling": 1.7}) + "\n")


if __name__ == "__main__":
    main()
