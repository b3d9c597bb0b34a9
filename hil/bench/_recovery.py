"""Recovery after a broker outage, for hil/bench/uplink_drain.py (a helper, not a bench).

The gateway side runs in this process as the service wires it: a group commit a second with
the uplink's hooks in it. The head-end is a `gateway-headend serve` process.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from storage.records import ReadingSet, StoredValue
from storage.store import Store
from uplink.commands import CommandRegistry
from uplink.keys import create_private_key, load_public_key, public_pem
from uplink.localbroker import Mosquitto
from uplink.quantity_codes import QUANTITY_CODES
from uplink.service import Uplink
from uplink.settings import UplinkSettings

GW = "gw-recovery"
METERS, VALUES = 100, 10
OUTAGE_S = 60.0
STEADY_S = 5.0
RECOVERY_RUNS = 3
# A recovery that has not ended in this long is reported as this long (a failure to see).
RECOVERY_TIMEOUT_S = 300.0


def one_second(t: int, rng: random.Random) -> list[ReadingSet]:
    return [ReadingSet(f"m{m:03d}", 1_700_000_000_000 + t * 1000 + m, tuple(
        StoredValue(name, Decimal(rng.randrange(0, 10**7)).scaleb(-2), "")
        for name in QUANTITY_CODES[:VALUES])) for m in range(METERS)]


async def _meters(store: Store, uplink: Uplink, stop: asyncio.Event) -> None:
    rng, t = random.Random(9), 0
    while not stop.is_set():
        ids = store.add_readings(one_second(t, rng), in_transaction=uplink.in_readings_commit)
        uplink.after_readings_commit(ids)
        t += 1
        await asyncio.sleep(1.0)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _outage(store: Store, uplink: Uplink, broker: Mosquitto) -> tuple[float, float]:
    """Seconds from the broker's return until every record stored before it is acked (the
    meters keep being read, as on a site), and the highest RSS seen meanwhile."""
    stop = asyncio.Event()
    meters = asyncio.create_task(_meters(store, uplink, stop))
    try:
        await asyncio.sleep(STEADY_S)
        broker.stop()
        await asyncio.sleep(OUTAGE_S)
        broker.start()
        back = time.perf_counter()
        last = store.db.conn.execute("SELECT max(id) FROM outbox").fetchone()[0]
        peak = rss_mb()
        while time.perf_counter() - back < RECOVERY_TIMEOUT_S:
            peak = max(peak, rss_mb())
            if _acked_through(store, last, uplink.state()["last_ack"]):
                return time.perf_counter() - back, peak
            await asyncio.sleep(0.05)
        return RECOVERY_TIMEOUT_S, peak
    finally:
        stop.set()
        await meters


def _acked_through(store: Store, record_id: int, acked_seq: int) -> bool:
    """Every record up to `record_id` is in a batch the head-end acked (the ack may still
    wait in memory for its commit: the head-end holds the records)."""
    left = store.db.conn.execute(
        "SELECT count(*) FROM outbox WHERE id <= ? AND (batch_seq IS NULL OR batch_seq > ?)",
        (record_id, acked_seq)).fetchone()[0]
    return int(left) == 0


def _headend(tmp: Path, url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "uplink.headend.cli", "serve", "--broker", url,
         "--db", str(tmp / "headend.db"), "--key", str(tmp / "server.pem"),
         "--enrol", f"{GW}={tmp / 'gw_pub.pem'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _one_run(tmp: Path) -> tuple[float, float]:
    broker = Mosquitto(tmp).start()
    server, gw_key = create_private_key(tmp / "server.pem"), create_private_key(tmp / "gw.pem")
    (tmp / "server_pub.pem").write_text(public_pem(server))
    (tmp / "gw_pub.pem").write_text(public_pem(gw_key))
    store = Store.open(tmp / "gateway.db")
    headend = _headend(tmp, broker.url)
    try:
        for m in range(METERS):
            store.upsert_meter(f"m{m:03d}")
        await asyncio.sleep(1.0)  # the head-end subscribes first
        uplink = Uplink(store, UplinkSettings(gateway_id=GW, broker_url=broker.url), gw_key,
                        load_public_key(tmp / "server_pub.pem"), CommandRegistry())
        task = asyncio.create_task(uplink.run())
        await uplink.wait_connected()
        figures = await _outage(store, uplink, broker)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return figures
    finally:
        headend.terminate()
        headend.wait()
        store.close()
        broker.stop()


def recovery_figures() -> dict[str, Any]:
    runs = []
    for _ in range(RECOVERY_RUNS):
        with tempfile.TemporaryDirectory(prefix="gw-recovery-") as name:
            runs.append(asyncio.run(_one_run(Path(name))))
    seconds, rss = [r[0] for r in runs], [r[1] for r in runs]
    # rss_drain_mb: this process (store + uplink, no drivers) while the backlog drains
    return {"recovery_s_after_60s_outage": round(statistics.median(seconds), 2),
            "recovery_s_after_60s_outage_min": round(min(seconds), 2),
            "recovery_s_after_60s_outage_max": round(max(seconds), 2),
            "rss_drain_mb": round(statistics.median(rss), 1),
            "rss_drain_mb_min": round(min(rss), 1), "rss_drain_mb_max": round(max(rss), 1),
            "recovery_meters": METERS, "recovery_runs": [round(r, 2) for r in seconds]}
