"""Backlog drain: 100 000 buffered readings through Mosquitto to the acking head-end, and the
recovery after a broker outage.

200 meters x 20 quantities x 25 instants are stored first (an outage), then the Uplink drains
them to a `gateway-headend serve` process. Prints JSON: readings_per_s end to end (first
connect to empty outbox) and wire_bytes_per_reading (MQTT PUBLISH packets of the batches).
Recovery: 100 meters x 10 values are stored every second as the gateway does (the uplink's
hooks in the group commit), the broker is stopped for OUTAGE_S, and the seconds from its
return to the last ack (reconnect included, the meters stopped at the return) are measured,
median of RECOVERY_RUNS with min and max.
"""

import asyncio
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hil.bench._recovery import recovery_figures
from storage.records import ReadingSet, StoredValue
from storage.store import Store
from uplink.commands import CommandRegistry
from uplink.keys import create_private_key, load_public_key, public_pem
from uplink.localbroker import Mosquitto
from uplink.mqtt import MqttLink
from uplink.quantity_codes import QUANTITY_CODES
from uplink.service import Uplink
from uplink.settings import UplinkSettings

METERS = 200
QUANTITIES = 20
INSTANTS = 25
INTERVAL_MS = 15 * 60 * 1000
GW = "gw-bench"
# The drain of 100 000 readings must end well within this, or the bench reports a failure.
DRAIN_TIMEOUT_S = 600.0
COUNTER = {"bytes": 0, "batches": 0}


def backlog() -> list[ReadingSet]:
    """Seeded random but realistic values: registers grow by random steps, instantaneous
    values jitter (so compression is not flattered by a pattern)."""
    rng = random.Random(7)
    names = QUANTITY_CODES[:QUANTITIES]
    registers = [[rng.randrange(10_000, 9_000_000) for _ in range(6)] for _ in range(METERS)]
    sets = []
    for k in range(INSTANTS):
        for m in range(METERS):
            regs = registers[m]
            for i in range(6):
                regs[i] += rng.randrange(0, 500)
            values = [Decimal(r).scaleb(-2) for r in regs]  # kWh, 2 decimals
            values += [Decimal(rng.randrange(2250, 2450)).scaleb(-1) for _ in range(3)]  # V
            values += [Decimal(rng.randrange(0, 60_000)).scaleb(-3) for _ in range(3)]  # A
            values += [Decimal(rng.randrange(-2000, 15_000)) for _ in range(QUANTITIES - 12)]
            ts = 1_700_000_000_000 + k * INTERVAL_MS + rng.randrange(0, 5000)
            sets.append(ReadingSet(f"meter-{m:03d}", ts, tuple(
                StoredValue(name, v, "") for name, v in zip(names, values, strict=True))))
    return sets


def count_wire_bytes(counter: dict[str, int]) -> None:
    original = MqttLink.publish

    def publish(self: MqttLink, topic: str, payload: bytes, **kw: Any) -> int:
        if topic.endswith("/up/batch"):
            # PUBLISH: fixed header (1 + up to 4 length bytes), topic (2 + len), packet id (2),
            # MQTT 5 property length (1), payload.
            counter["bytes"] += 1 + 3 + 2 + len(topic) + 2 + 1 + len(payload)
            counter["batches"] += 1
        return original(self, topic, payload, **kw)
    MqttLink.publish = publish  # type: ignore[method-assign]


def run_variant(compress: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        broker = Mosquitto(tmp).start()
        server = create_private_key(tmp / "server.pem")
        (tmp / "server_pub.pem").write_text(public_pem(server))
        store = Store.open(tmp / "gateway.db")
        for m in range(METERS):
            store.upsert_meter(f"meter-{m:03d}")
        sets = backlog()
        for start in range(0, len(sets), 1000):
            store.add_readings(sets[start:start + 1000])
        COUNTER.update(bytes=0, batches=0)
        settings = UplinkSettings(gateway_id=GW, broker_url=broker.url, batch_interval_s=0.05,
                                  compress=compress)
        try:
            elapsed = asyncio.run(_run(store, settings, tmp, broker.url))
        finally:
            store.close()
            broker.stop()
        with sqlite3.connect(tmp / "headend.db") as conn:
            stored = sum(len(json.loads(body)["values"]) for (body,) in conn.execute(
                "SELECT body FROM records WHERE kind = 'reading'"))
    readings = METERS * QUANTITIES * INSTANTS
    assert stored == readings, f"head-end holds {stored} readings, expected {readings}"
    return {"readings": readings, "seconds": round(elapsed, 2),
            "readings_per_s": round(readings / elapsed),
            "wire_bytes_per_reading": round(COUNTER["bytes"] / readings, 2),
            "batches": COUNTER["batches"]}


def main() -> None:
    recovery = recovery_figures()  # first: its RSS figure must not carry the 100 000 below
    count_wire_bytes(COUNTER)
    plain = run_variant(compress=False)
    result = run_variant(compress=True)
    result["uncompressed"] = plain
    result.update(recovery)
    sys.stdout.write(json.dumps(result) + "\n")


async def _run(store: Store, settings: UplinkSettings, tmp: Path, url: str) -> float:
    gw_key = create_private_key(tmp / "gateway.pem")
    (tmp / "gw_pub.pem").write_text(public_pem(gw_key))
    headend = subprocess.Popen(
        [sys.executable, "-m", "uplink.headend.cli", "serve", "--broker", url,
         "--db", str(tmp / "headend.db"), "--key", str(tmp / "server.pem"),
         "--enrol", f"{GW}={tmp / 'gw_pub.pem'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await asyncio.sleep(1.0)  # let the head-end subscribe before the gateway publishes
        uplink = Uplink(store, settings, gw_key, load_public_key(tmp / "server_pub.pem"),
                        CommandRegistry())
        task = asyncio.create_task(uplink.run())
        await uplink.wait_connected()
        start = time.perf_counter()
        assert await uplink.flush(DRAIN_TIMEOUT_S), uplink.state()
        elapsed = time.perf_counter() - start
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return elapsed
    finally:
        headend.terminate()
        headend.wait()


if __name__ == "__main__":
    main()
