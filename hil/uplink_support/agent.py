"""A stand-in gateway process for fault tests: keeps adding readings and runs the Uplink.

Until `gateway run` exists this is what the hil tests SIGKILL. Fault injection (exact points
an outside kill cannot hit reliably) via UPLINK_CRASH_AT:
  build:N  SIGKILL itself inside the transaction that stores batch N (before its commit)
  send:N   SIGKILL itself right after handing the N-th batch publish to the MQTT client
"""

import argparse
import asyncio
import os
import signal
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from storage import batches
from storage.records import ReadingSet, StoredValue
from storage.store import Store
from uplink.commands import CommandRegistry
from uplink.keys import load_private_key, load_public_key
from uplink.mqtt import MqttLink
from uplink.service import Uplink
from uplink.settings import UplinkSettings

QUANTITIES = (("import_active_energy", "kWh"), ("voltage_l1", "V"), ("current_l1", "A"),
              ("active_power", "W"), ("frequency", "Hz"))
SIM_STEP_MS = 60_000  # one simulated minute per tick


def install_crash_point(spec: str | None) -> None:
    if not spec:
        return
    where, _, n = spec.partition(":")
    target = int(n)
    if where == "build":
        original = batches.add_batch

        def add_batch(tx: Any, seq: int, *args: Any, **kw: Any) -> None:
            original(tx, seq, *args, **kw)
            if seq == target:
                os.kill(os.getpid(), signal.SIGKILL)
        batches.add_batch = add_batch
    elif where == "send":
        original_publish = MqttLink.publish
        count = {"n": 0}

        def publish(self: MqttLink, topic: str, payload: bytes, **kw: Any) -> int:
            mid = original_publish(self, topic, payload, **kw)
            if topic.endswith("/up/batch"):
                count["n"] += 1
                if count["n"] == target:
                    os.kill(os.getpid(), signal.SIGKILL)
            return mid
        MqttLink.publish = publish  # type: ignore[method-assign]


def reading_sets(meters: int, ts_ms: int, tick: int) -> list[ReadingSet]:
    return [ReadingSet(f"meter-{m:03d}", ts_ms, tuple(
        StoredValue(q, Decimal(f"{tick * 7 + m}.{m % 10}"), u) for q, u in QUANTITIES))
        for m in range(meters)]


async def run(args: argparse.Namespace) -> None:
    store = Store.open(args.db)
    settings = UplinkSettings(gateway_id=args.gw, broker_url=args.broker,
                              batch_interval_s=0.05, backoff_min_s=0.05, backoff_max_s=0.5,
                              ack_timeout_s=5.0, max_batch_bytes=args.max_batch_bytes)
    uplink = Uplink(store, settings, load_private_key(Path(args.key)),
                    load_public_key(Path(args.server_pub)), CommandRegistry())
    task = asyncio.create_task(uplink.run())
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    ts_ms = args.start_ms
    for tick in range(args.ticks):
        store.add_readings(reading_sets(args.meters, ts_ms, tick))
        uplink.wake()
        ts_ms += SIM_STEP_MS
        sys.stdout.write(f"tick {tick} {ts_ms}\n")
        sys.stdout.flush()
        await asyncio.sleep(args.tick_s)
    sys.stdout.write("done adding\n")
    sys.stdout.flush()
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--db", "--key", "--server-pub", "--broker", "--gw"):
        parser.add_argument(name, required=True)
    parser.add_argument("--meters", type=int, default=10)
    parser.add_argument("--ticks", type=int, default=20)
    parser.add_argument("--tick-s", type=float, default=0.02)
    parser.add_argument("--start-ms", type=int, default=1_700_000_000_000)
    parser.add_argument("--max-batch-bytes", type=int, default=4096)
    args = parser.parse_args()
    install_crash_point(os.environ.get("UPLINK_CRASH_AT"))
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
