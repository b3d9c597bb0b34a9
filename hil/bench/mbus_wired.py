"""Benchmark: wired M-Bus frames decoded per second on one core, and the time a secondary
search of a 250-meter bus takes at 2400 baud.

Decoding: every corpus frame (tests/corpus/mbus/frames.json) that decodes strictly, parsed
from its bytes (FT1.2 checks, header, records) and mapped to samples as a poll does; CPU time
(time.process_time) on a pinned core, RUNS runs: median with min and max.

Search: a pty ignores baud, so the time is computed from the wire: the search runs against the
simulated bus over `sim.SimLink`, which adds every byte exchanged at 11 bits per character,
the standard's answer timeout (330 bit times + 50 ms) for each select nobody answers, the
inter-byte silence (22 bit times + 50 ms) that ends a collision, and a meter's 10 ms reaction
before each answer. SEEDS random sets of 250 meter ids: median with min and max, and the parts.

Prints one JSON object as its last line.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import time
from pathlib import Path
from typing import Final

from drivers.errors import DriverError
from drivers.mbus_wired import link
from drivers.mbus_wired.readout import readout_samples
from drivers.mbus_wired.responses import decode_rsp_ud
from drivers.mbus_wired.search import search
from drivers.mbus_wired.session import MbusMaster
from drivers.mbus_wired.sim import SimBus, SimLink
from drivers.mbus_wired.simpty import load_frames, meters_from_frames

CORPUS: Final = Path(__file__).resolve().parents[2] / "tests/corpus/mbus/frames.json"
RUNS: Final = 7
PASSES: Final = 200          # passes over the usable corpus frames a run
SEARCH_METERS: Final = 250
SEARCH_BAUD: Final = 2400
SEEDS: Final = (1, 2, 3, 4, 5)
FIXTURES: Final = ("libmbus/abb_f95", "libmbus/tecson", "libmbus/kamstrup_382_005",
                   "libmbus/itron_cf_55", "libmbus/LGB_G350")


def _pin() -> int | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    core = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def usable_frames() -> list[bytes]:
    frames = []
    for frame in load_frames(CORPUS).values():
        try:
            readout_samples([decode_rsp_ud(frame)])
        except DriverError:
            continue
        frames.append(frame)
    return frames


def decode_rates(frames: list[bytes]) -> list[float]:
    def job() -> int:
        for _ in range(PASSES):
            for frame in frames:
                readout_samples([decode_rsp_ud(frame)])
        return PASSES * len(frames)
    job()
    rates = []
    for _ in range(RUNS):
        gc.collect()
        start = time.process_time()
        count = job()
        rates.append(count / (time.process_time() - start))
    return rates


async def search_time(seed: int) -> dict[str, float]:
    """One search of SEARCH_METERS meters in virtual time, and what it is made of."""
    frames = load_frames(CORPUS)
    meters = meters_from_frames([[frames[name]] for name in FIXTURES], SEARCH_METERS, seed=seed)
    bus = SimBus(meters)
    sim_link = SimLink(bus, SEARCH_BAUD)
    result = await search(MbusMaster(sim_link))
    if len(result.meters) != SEARCH_METERS or result.unresolved:
        raise RuntimeError(f"seed {seed}: found {len(result.meters)} of {SEARCH_METERS}")
    wire = link.wire_time_s(sim_link.sent_bytes + sim_link.received_bytes, SEARCH_BAUD)
    return {"seconds": sim_link.elapsed_s, "wire_s": wire,
            "waits_s": sim_link.elapsed_s - wire, "probes": result.probes,
            "collisions": result.collisions,
            "bytes": sim_link.sent_bytes + sim_link.received_bytes}


def _figures(name: str, values: list[float], digits: int = 0) -> dict[str, float]:
    return {name: round(statistics.median(values), digits),
            f"{name}_min": round(min(values), digits), f"{name}_max": round(max(values), digits)}


def main() -> None:
    core = _pin()
    frames = usable_frames()
    result: dict[str, object] = {}
    result |= _figures("frames_per_s", decode_rates(frames))
    searches = [asyncio.run(search_time(seed)) for seed in SEEDS]
    result |= _figures("secondary_search_250_s_2400_baud",
                       [s["seconds"] for s in searches], 1)
    for part in ("wire_s", "waits_s", "probes", "bytes", "collisions"):
        result |= _figures(f"search_{part}", [s[part] for s in searches], 1)
    result |= {"corpus_frames": len(frames), "clock": "process_time", "runs": RUNS,
               "cpu": core, "search_meters": SEARCH_METERS, "search_baud": SEARCH_BAUD,
               "search_seeds": len(SEEDS)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
