"""Simulated fleet for `gateway-headend loadtest`: every gateway has its own Ed25519 key, its
own gateway store (the real `storage.Store`) and chain, and its batches are built by the real
`uplink.batcher.Batcher`, exactly as a gateway would build them after an outage.

Building runs in a process pool (signing and compressing cost CPU); the result per gateway is
its public key and its signed batches, in chain order.
"""

import random
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage.records import ReadingSet, StoredValue
from storage.store import Store
from uplink.batcher import Batcher
from uplink.keys import public_pem
from uplink.quantity_codes import QUANTITY_CODES

VALUES_PER_READING: Final = 15
MINUTE_MS: Final = 60_000
# The gateway's default batch cap (docs/uplink.md, max_batch_bytes).
BATCH_CAP: Final = 65_536
# Gateways built per pool task: enough to amortise the task, small enough to balance.
CHUNK: Final = 25


@dataclass(frozen=True, slots=True)
class SimGateway:
    gw: str
    public_pem: str
    batches: list[bytes]  # signed COSE bytes, seq 1.. in order
    records: int
    values: int


@dataclass(frozen=True, slots=True)
class FleetSpec:
    gateways: int
    meters: int
    minutes: int
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00Z
    prefix: str = "sim"
    # bytes per batch: the gateway default; a small cap gives a small fleet longer chains
    batch_cap: int = BATCH_CAP

    def gw_id(self, n: int) -> str:
        return f"{self.prefix}-{n:05d}"


def _readings(spec: FleetSpec, n: int) -> list[ReadingSet]:
    """One reading per meter per minute: energy registers grow, voltages and currents jitter
    (seeded per gateway, so a run is repeatable and compression is not flattered)."""
    rng = random.Random(n)
    names = QUANTITY_CODES[:VALUES_PER_READING]
    regs = [[rng.randrange(10_000, 9_000_000) for _ in range(6)] for _ in range(spec.meters)]
    out = []
    for minute in range(spec.minutes):
        for m in range(spec.meters):
            for i in range(6):
                regs[m][i] += rng.randrange(0, 40)
            values = [Decimal(r).scaleb(-2) for r in regs[m]]
            values += [Decimal(rng.randrange(2250, 2450)).scaleb(-1) for _ in range(3)]
            values += [Decimal(rng.randrange(0, 60_000)).scaleb(-3) for _ in range(3)]
            values += [Decimal(rng.randrange(-2000, 15_000)) for _ in range(3)]
            ts = spec.start_ms + minute * MINUTE_MS + rng.randrange(0, 2000)
            out.append(ReadingSet(f"m{m:04d}", ts, tuple(
                StoredValue(q, v, "") for q, v in zip(names, values, strict=True))))
    return out


def build_gateway(spec: FleetSpec, n: int, workdir: Path) -> SimGateway:
    gw = spec.gw_id(n)
    key = Ed25519PrivateKey.generate()
    store = Store.open(workdir / f"{gw}.db")
    try:
        for m in range(spec.meters):
            store.upsert_meter(f"m{m:04d}")
        sets = _readings(spec, n)
        store.add_readings(sets)
        batcher = Batcher(store, gw, key, compress=True, clock=time.time)
        batches = []
        while (built := batcher.build(spec.batch_cap)) is not None:
            batches.append(built.batch.data)
    finally:
        store.close()
    (workdir / f"{gw}.db").unlink(missing_ok=True)
    return SimGateway(gw, public_pem(key), batches, len(sets), len(sets) * VALUES_PER_READING)


def _build_chunk(spec: FleetSpec, first: int, last: int) -> list[SimGateway]:
    with tempfile.TemporaryDirectory(prefix="fleet-") as name:
        return [build_gateway(spec, n, Path(name)) for n in range(first, last)]


def build_fleet(spec: FleetSpec, *, processes: int = 2) -> list[SimGateway]:
    chunks = [(i, min(i + CHUNK, spec.gateways)) for i in range(0, spec.gateways, CHUNK)]
    with ProcessPoolExecutor(max_workers=processes) as pool:
        parts = pool.map(_build_chunk, [spec] * len(chunks), *zip(*chunks, strict=True))
        return [gw for part in parts for gw in part]
