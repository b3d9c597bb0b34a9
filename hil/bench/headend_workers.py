"""Head-end workers into PostgreSQL: values/s with 1 and with 2 `serve` processes on one
shared subscription (verify + chain check + store + ack), and the scaling ratio.

A simulated fleet (50 gateways x 200 meters x 8 minutes of 15 values, built by the real
batcher, 1.2 M values) is published through a local Mosquitto into a local PostgreSQL (both
started here, fsync on). The fleet publisher, broker and database share the machine with the
workers, so on a 2-core machine the ratio is bounded by the cores, not by the head-end.
Prints JSON: per run values_per_s and values_per_s_per_worker, and scaling_2_over_1.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from uplink.headend.fleet import FleetSpec, build_fleet
from uplink.headend.loadtest import LoadOptions, run

SPEC = FleetSpec(gateways=50, meters=200, minutes=8)
KEYS = ("ok", "batches", "values", "seconds", "values_per_s", "values_per_s_per_worker",
        "resent", "missing_records", "duplicate_records")


def main() -> None:
    fleet = build_fleet(SPEC)
    runs = {}
    for workers in (1, 2):
        result = run(LoadOptions(SPEC, None, None, workers), fleet)
        assert result["ok"], result
        runs[f"workers_{workers}"] = {k: result[k] for k in KEYS}
    ratio = runs["workers_2"]["values_per_s"] / runs["workers_1"]["values_per_s"]
    sys.stdout.write(json.dumps({**runs, "scaling_2_over_1": round(ratio, 2),
                                 "target_values_per_s_1_worker": 500_000,
                                 "target_scaling": 1.7}) + "\n")


if __name__ == "__main__":
    main()
