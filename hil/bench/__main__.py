"""`make bench`: runs every bench module in its own process and prints their figures as JSON.

Each module `hil/bench/<name>.py` is run as `python -m hil.bench.<name>` and must print one JSON
object as its last line of output. A bench that fails is reported with its error, not hidden.
The headline figures (HEADLINE) are lifted to the top level, each a median with `_min` and
`_max`, so two runs compare key by key; one no bench measured is null.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

# A bench that has not finished in this time is stuck, not slow (spine runs 4 sites x 3 runs).
BENCH_TIMEOUT_S = 1800
# headline key -> (bench module, path to the median inside its JSON); `_min`/`_max` beside it.
HEADLINE: dict[str, tuple[str, tuple[str, ...]]] = {
    "disk_bytes_per_value_uplink_n10": ("spine", ("uplink_n10", "bytes_per_value")),
    "disk_bytes_per_value_uplink_n100": ("spine", ("uplink_n100", "bytes_per_value")),
    "mb_written_per_hour_200_meters_1min": ("spine", ("uplink_200_meters_1min",
                                                      "mb_written_per_hour")),
    "recovery_s_after_60s_outage": ("uplink_drain", ("recovery_s_after_60s_outage",)),
    "rss_steady_mb": ("spine", ("uplink_n100", "rss_mb")),
    "rss_drain_mb": ("uplink_drain", ("rss_drain_mb",)),
    "dsmr_vs_dsmr_parser_ratio": ("dsmr_compare", ("dsmr_vs_dsmr_parser_ratio",)),
    "analytics_cpu_s_per_1000_readings_extra": ("analytics", (
        "cpu_s_per_1000_readings_extra",)),
    "analytics_bytes_written_per_reading_extra": ("analytics", (
        "bytes_written_per_reading_extra",)),
}


def run_one(name: str) -> dict[str, object]:
    try:
        done = subprocess.run([sys.executable, "-m", f"hil.bench.{name}"], capture_output=True,
                              text=True, timeout=BENCH_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {BENCH_TIMEOUT_S} s"}
    lines = [line for line in done.stdout.splitlines() if line.strip().startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return {"error": f"exit {done.returncode}", "output": tail}
    result: dict[str, object] = json.loads(lines[-1])
    return result


def _lookup(results: dict[str, dict[str, object]], module: str,
            path: tuple[str, ...], suffix: str) -> object:
    node: object = results.get(module)
    for i, key in enumerate(path):
        if not isinstance(node, dict):
            return None
        node = node.get(key + suffix if i == len(path) - 1 else key)
    return node


def headline(results: dict[str, dict[str, object]]) -> dict[str, object]:
    """The HEADLINE keys with their min and max; null where no bench measured one."""
    out: dict[str, object] = {}
    for key, (module, path) in HEADLINE.items():
        for suffix in ("", "_min", "_max"):
            out[key + suffix] = _lookup(results, module, path, suffix)
    return out


def main() -> int:
    names = sys.argv[1:] or sorted(
        m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if not m.name.startswith("_"))
    results = {name: run_one(name) for name in names}
    sys.stdout.write(json.dumps({**headline(results), **results}, indent=2) + "\n")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
