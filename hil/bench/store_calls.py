"""How long store calls hold the thread that makes them, and what that does to the loop.

The figures behind docs/storage.md "Who owns the connection": one group commit of a polled
site (200 meters x 25 values), one event, the console's `usage()`, the uplink's
`pending_outbox()` and a full batch build (scan, encode, sign, store) on a store of `READINGS`
readings, and the lateness of a 10 ms asyncio
ticker while group commits run on the loop versus on one worker thread owning its own store.
Wall time (fsync is the point; the batch build in CPU time), medians with min and max, one
JSON object on the last line.
Run it on the card's file system (BENCH_DIR): tmpfs has no fsync cost.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage.measure import site_readings
from storage.store import Store
from uplink.batcher import Batcher

METERS, VALUES = 200, 25
COMMITS = 40
READINGS = 200_000
TICK_S = 0.01
LAG_COMMITS = 20
LAG_INTERVAL_S = 0.1
BATCH_BYTES = 65536  # the uplink's default max_batch_bytes
BUILDS = 8


def _figures(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {"median_ms": round(statistics.median(ms), 2), "min_ms": round(min(ms), 2),
            "max_ms": round(max(ms), 2), "n": len(ms)}


def _timed(action: Callable[[], object], n: int,
           clock: Callable[[], float] = time.perf_counter) -> list[float]:
    samples = []
    for _ in range(n):
        start = clock()
        action()
        samples.append(clock() - start)
    return samples


async def _loop_lag(commit: Callable[[], object], worker: ThreadPoolExecutor | None
                    ) -> list[float]:
    """Lateness of a 10 ms ticker while LAG_COMMITS group commits run on the loop (no worker)
    or on the one worker thread that owns its own store."""
    late: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(TICK_S)
            late.append(time.perf_counter() - start - TICK_S)

    loop = asyncio.get_running_loop()
    tick = asyncio.create_task(ticker())
    for _ in range(LAG_COMMITS):
        await asyncio.sleep(LAG_INTERVAL_S)
        if worker is None:
            commit()
        else:
            await loop.run_in_executor(worker, commit)
    done.set()
    await tick
    return late


class _Site:
    """A store with the site's meters and a commit of the next simulated second."""

    def __init__(self, path: Path) -> None:
        self.store = Store.open(path)
        for meter in range(METERS):
            self.store.upsert_meter(f"meter-{meter:04d}", protocol="modbus")
        self.second = 0

    def commit(self) -> None:
        self.second += 1
        self.store.add_readings(site_readings(METERS, VALUES, self.second))


def measure(directory: str | None) -> dict[str, object]:
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        site = _Site(Path(tmp) / "bench.db")
        store = site.store
        commit_s = _timed(site.commit, COMMITS)
        event_s = _timed(lambda: store.add_event("bench", meter_id=None, data={}, ts_ms=1), 40)
        while store.usage().readings < READINGS:
            site.commit()
        usage_s = _timed(store.usage, 5)
        pending_s = _timed(lambda: store.pending_outbox(500), 5)
        batcher = Batcher(store, "gw-bench", Ed25519PrivateKey.generate(), compress=True)
        batcher.build(BATCH_BYTES)  # the scan size adapts on the first build
        build_s = _timed(lambda: batcher.build(BATCH_BYTES), BUILDS, time.process_time)
        on_loop = asyncio.run(_loop_lag(site.commit, None))
        store.close()
        with ThreadPoolExecutor(max_workers=1) as worker:
            owned = worker.submit(_Site, Path(tmp) / "bench.db").result()
            in_worker = asyncio.run(_loop_lag(owned.commit, worker))
            worker.submit(owned.store.close).result()
    return {
        "directory": directory or tempfile.gettempdir(),
        "group_commit_200x25": _figures(commit_s),
        "single_event": _figures(event_s),
        f"usage_{READINGS}_readings": _figures(usage_s),
        "pending_outbox_500": _figures(pending_s),
        "uplink_batch_build_64k_cpu": _figures(build_s),
        "ticker_late_commits_on_loop": _figures(on_loop),
        "ticker_late_commits_on_owner_thread": _figures(in_worker),
    }


if __name__ == "__main__":
    sys.stdout.write(json.dumps(measure(os.environ.get("BENCH_DIR"))) + "\n")
