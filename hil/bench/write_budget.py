"""Write budget with the uplink on, phase by phase, in one process (no network, no wall time).

Each simulated second: one group commit of N meters x 10 values with the uplink's hook in it
(as gateway/app/writer.py and gateway/app/service.py wire it), one uplink pump (the real
Uplink over a link that accepts every publish) and the head-end's signed ack for what was sent.
/proc/self/io write_bytes is read around each phase; checkpoints run as their own phase at
SQLite's autocheckpoint size, so their bytes are counted apart. Prints JSON: bytes per value
in total and per phase, each the median of RUNS runs with min and max. Run it on the card
itself: tmpfs reports zero.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from storage import db
from storage.records import ReadingSet, StoredValue
from storage.store import Store
from uplink.codec import Ack, encode_ack
from uplink.commands import CommandRegistry
from uplink.cose import sign1
from uplink.keys import create_private_key
from uplink.quantity_codes import QUANTITY_CODES
from uplink.service import Uplink
from uplink.settings import UplinkSettings

GW = "gw-budget"
VALUES_PER_METER = 10
SECONDS = 240
RUNS = 3
PHASES = ("readings", "uplink_pump", "ack", "checkpoint")


def write_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError("no write_bytes in /proc/self/io")


class AcceptingLink:
    """Stands in for MqttLink: every publish is accepted; the payloads are kept."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def publish(self, topic: str, payload: bytes, **_: Any) -> int:
        self.sent.append(payload)
        return len(self.sent)

    def set_urgent(self, urgent: bool) -> None:
        pass


def second_of_readings(meters: int, t: int, rng: random.Random) -> list[ReadingSet]:
    names = QUANTITY_CODES[:VALUES_PER_METER]
    return [ReadingSet(f"m{m:03d}", 1_700_000_000_000 + t * 1000 + m, tuple(
        StoredValue(name, Decimal(rng.randrange(0, 10**7)).scaleb(-2), "")
        for name in names)) for m in range(meters)]


class Phases:
    def __init__(self) -> None:
        self.bytes = dict.fromkeys(PHASES, 0)

    def count(self, phase: str, start: int) -> None:
        self.bytes[phase] += write_bytes() - start


async def simulate(meters: int, seconds: int, tmp: Path) -> dict[str, float]:
    store = Store.open(tmp / "gateway.db")
    store._conn.execute("PRAGMA wal_autocheckpoint = 0")  # checkpoints counted on their own
    gw_key, he_key = create_private_key(tmp / "gw.pem"), create_private_key(tmp / "he.pem")
    uplink = Uplink(store, UplinkSettings(gateway_id=GW, broker_url="mqtt://127.0.0.1:1"),
                    gw_key, he_key.public_key(), CommandRegistry(), clock=lambda: now[0])
    link = AcceptingLink()
    uplink._link, uplink._connected = link, True  # type: ignore[assignment]
    rng, phases, now = random.Random(5), Phases(), [1_700_000_000.0]
    for m in range(meters):
        store.upsert_meter(f"m{m:03d}")
    for t in range(seconds):
        now[0] += 1.0
        start = write_bytes()
        # as gateway/app/service.py wires it: the uplink rides on the readings' commit
        stored = store.add_readings(second_of_readings(meters, t, rng),
                                    in_transaction=uplink.in_readings_commit)
        uplink.after_readings_commit(stored)
        phases.count("readings", start)
        start = write_bytes()
        await uplink._pump()
        phases.count("uplink_pump", start)
        start = write_bytes()
        ack = sign1(encode_ack(Ack(GW, uplink.state()["head"])), he_key, b"headend")
        await uplink._handle_ack(ack)
        phases.count("ack", start)
        start = write_bytes()
        wal = Path(f"{store.path}-wal")
        if wal.exists() and wal.stat().st_size >= db.WAL_AUTOCHECKPOINT_PAGES * db.PAGE_SIZE:
            store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        phases.count("checkpoint", start)
    assert store.outbox_backlog() <= meters, store.outbox_backlog()
    store.close()
    values = meters * VALUES_PER_METER * seconds
    figures = {f"{p}_bytes_per_value": phases.bytes[p] / values for p in PHASES}
    figures["bytes_per_value"] = sum(phases.bytes.values()) / values
    return figures


def one_run(meters: int) -> dict[str, float]:
    # in the working directory, not /tmp: on the Pi /tmp is tmpfs, where writes count zero
    with tempfile.TemporaryDirectory(prefix="gw-budget-", dir=Path.cwd()) as name:
        return asyncio.run(simulate(meters, SECONDS, Path(name)))


def summary(runs: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in runs[0]:
        values = [r[key] for r in runs]
        out[key] = round(statistics.median(values), 1)
        out[f"{key}_min"], out[f"{key}_max"] = round(min(values), 1), round(max(values), 1)
    return out


def main() -> None:
    result: dict[str, object] = {f"n{n}": summary([one_run(n) for _ in range(RUNS)])
                                 for n in (10, 100)}
    result["seconds_simulated"] = SECONDS
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
