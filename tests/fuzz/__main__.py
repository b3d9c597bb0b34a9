"""`python -m tests.fuzz` (`make fuzz`): run every target, print one JSON object, exit 1 on
any crash. Settings: FUZZ_INPUTS (total, default 3 000 000), FUZZ_PER_TARGET, FUZZ_TARGETS
(comma-separated names), FUZZ_SEED, FUZZ_JOBS (processes, default 2), FUZZ_TIMEOUT_S."""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any, Final

from tests.fuzz.harness import HARNESS_DIR, Runner, result_report, write_reproducers
from tests.fuzz.targets import TARGETS, budget

DEFAULT_INPUTS: Final = 3_000_000  # about 8 minutes on two idle cores
MEMORY_LIMIT_BYTES: Final = 3 * 1024**3  # one runaway input must not take the machine down


def _env_int(name: str, default: int | None) -> int | None:
    value = os.environ.get(name)
    return int(value.replace("_", "")) if value else default


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--inputs", type=int, default=_env_int("FUZZ_INPUTS", DEFAULT_INPUTS))
    parser.add_argument("--per-target", type=int, default=_env_int("FUZZ_PER_TARGET", None))
    parser.add_argument("--targets", default=os.environ.get("FUZZ_TARGETS", ""),
                        help="comma-separated target names (default: all)")
    parser.add_argument("--seed", type=int, default=_env_int("FUZZ_SEED", 0))
    parser.add_argument("--jobs", type=int, default=_env_int("FUZZ_JOBS", 2))
    parser.add_argument("--crash-dir", type=Path, default=HARNESS_DIR / "crashes")
    parser.add_argument("--list", action="store_true", help="print the target names and exit")
    return parser.parse_args(argv)


def run_target(job: tuple[str, int, int, Path | None]) -> dict[str, Any]:
    """Run one target in this process; returns its report (reproducers written if asked)."""
    name, inputs, seed, crash_dir = job
    logging.disable(logging.CRITICAL)
    target = TARGETS[name]
    result = Runner(target, seed).run(inputs)
    if crash_dir is not None:
        write_reproducers(crash_dir, target, result)
    return {"name": name, **result_report(target, result)}


def run_all(names: list[str], shares: dict[str, int], seed: int, jobs: int,
            crash_dir: Path | None) -> list[dict[str, Any]]:
    # the slowest targets first, so two workers finish at about the same time
    order = sorted(names, key=lambda n: -shares[n] / max(TARGETS[n].weight, 0.01))
    work = [(n, shares[n], seed, crash_dir) for n in order]
    if jobs <= 1:
        return [run_target(job) for job in work]
    context = multiprocessing.get_context("fork")
    with context.Pool(jobs, maxtasksperchild=1) as pool:
        return list(pool.imap_unordered(run_target, work))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        print("\n".join(TARGETS))
        return 0
    names = [n for n in args.targets.split(",") if n] or list(TARGETS)
    unknown = sorted(set(names) - set(TARGETS))
    if unknown:
        print(f"unknown targets {unknown}; known: {', '.join(TARGETS)}", file=sys.stderr)
        return 2
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, resource.RLIM_INFINITY))
    shares = budget(args.inputs, names, args.per_target)
    started = time.monotonic()
    reports = run_all(names, shares, args.seed, args.jobs, args.crash_dir)
    by_name = {r.pop("name"): r for r in sorted(reports, key=lambda r: r["name"])}
    crashes = sum(r["crashes"] for r in by_name.values())
    summary = {
        "seed": args.seed, "jobs": args.jobs, "inputs": sum(r["inputs"] for r in by_name.values()),
        "seconds": round(time.monotonic() - started, 1), "crashes": crashes,
        "slowest_ms": max((r["slowest_ms"] for r in by_name.values()), default=0),
        "max_rss_growth_kb": max((r["rss_growth_kb"] for r in by_name.values()), default=0),
        "targets": by_name,
    }
    print(json.dumps(summary, indent=1))
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
