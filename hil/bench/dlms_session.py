"""Benchmark: the DLMS client session against the simulated meter, in memory.

- reads per CPU second (pinned core) of one polled read of the generic profile (SNRM/UA,
  association, GET with-list of registers and clock, release, DISC) without authentication
  and with HLS-GMAC and suite-0 ciphering; the simulated meter runs in the same process, so
  its CPU is in the figure;
- the bytes both ways of that read and of one day of a 15-minute load profile read by range
  (the simulator's profile: clock and 1.8.0, 97 rows; association, capture objects and the
  register's scaler included),
  the real frames the session exchanged, and their wire time at 9600 baud 8N1 (10 bits a
  character; the meter's reaction time per frame is not in it) with the default 128-byte
  information field and with 1024 negotiated;
- invocation counter file writes per ciphered read.
Medians with min and max, one JSON object on the last line.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from core.clock import FakeClock
from drivers.dlms.client import Authentication, Credentials
from drivers.dlms.counters import CounterFile
from drivers.dlms.hdlc import Address
from drivers.dlms.link import LinkParameters
from drivers.dlms.profile_read import read_range
from drivers.dlms.read_profiles import read_profile
from drivers.dlms.reader import DlmsBus, MeterSettings
from drivers.dlms.security import Keys
from drivers.dlms.server import CosemServer, ServerSettings
from drivers.dlms.sim import HdlcServerLink, LoopbackStream
from drivers.dlms.sim_objects import SimObjects
from drivers.transport.stream import line_time_s

KEYS: Final = Keys(bytes(range(16)), bytes(range(16, 32)))
RUNS: Final = 5
READS_PER_RUN: Final = 200
BAUD: Final = 9600
METER: Final = Address(1, 17, 2)


class Counting(LoopbackStream):
    def __init__(self, far: HdlcServerLink) -> None:
        super().__init__(far)
        self.sent = self.received = 0

    async def _send(self, data: bytes) -> None:
        self.sent += len(data)
        await super()._send(data)

    def _received(self, chunk: bytes) -> None:
        self.received += len(chunk)
        super()._received(chunk)


def _pin() -> None:
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1]})


def _setup(auth: Authentication, info: int = 128,
           clock: FakeClock | None = None) -> tuple[DlmsBus, MeterSettings, Counting, CounterFile]:
    clock = clock or FakeClock()
    limits = LinkParameters(info, info, 1, 1)
    far = HdlcServerLink(CosemServer(SimObjects(clock.wall_ms), ServerSettings(
        keys=KEYS, block_size=max(200, info * 4))), METER, limits)
    stream = Counting(far)
    counters = CounterFile(Path(tempfile.mkdtemp()) / "c.json")
    bus = DlmsBus(counters, open_line=lambda: stream, proposed=limits)
    hls = auth is Authentication.HLS_GMAC
    creds = Credentials(auth, keys=KEYS if hls else None, ciphered=hls)
    return bus, MeterSettings("m", creds, read_profile("generic"), client=1 if hls else 16), \
        stream, counters


async def _rate(auth: Authentication) -> dict[str, Any]:
    bus, meter, stream, counters = _setup(auth)
    await bus.read_meter(meter)  # scalers known from here on: the steady-state read
    stream.sent = stream.received = 0
    writes = counters.writes
    rates = []
    for _ in range(RUNS):
        start = time.process_time()
        for _ in range(READS_PER_RUN):
            await bus.read_meter(meter)
        rates.append(READS_PER_RUN / (time.process_time() - start))
    reads = RUNS * READS_PER_RUN
    per_read = (stream.sent + stream.received) / reads
    return {"median_per_s": round(statistics.median(rates)), "min_per_s": round(min(rates)),
            "max_per_s": round(max(rates)), "bytes_per_read": round(per_read),
            "wire_s_per_read_9600": round(line_time_s(round(per_read), BAUD), 3),
            "counter_writes_per_read": round((counters.writes - writes) / reads, 3)}


async def _profile_day(info: int) -> dict[str, Any]:
    clock = FakeClock()
    bus, meter, stream, _ = _setup(Authentication.HLS_GMAC, info, clock)
    clock.step(2 * 24 * 3600)
    end = datetime.fromtimestamp(clock.wall_ms() // 1000, UTC).replace(tzinfo=None)
    read = await bus.run(meter, lambda a: read_range(a, "1-0:99.1.0.255",
                                                      end - timedelta(days=1), end))
    total = stream.sent + stream.received
    return {"rows": len(read.rows), "bytes_to_meter": stream.sent,
            "bytes_from_meter": stream.received,
            "wire_s_9600": round(line_time_s(total, BAUD), 2)}


async def run() -> dict[str, Any]:
    return {"read_none": await _rate(Authentication.NONE),
            "read_hls_gmac": await _rate(Authentication.HLS_GMAC),
            "profile_day_info_128": await _profile_day(128),
            "profile_day_info_1024": await _profile_day(1024)}


def main() -> None:
    _pin()
    print(json.dumps(asyncio.run(run())))


if __name__ == "__main__":
    main()
