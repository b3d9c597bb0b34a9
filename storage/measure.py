"""SD-card wear figure: bytes the store writes to disk per stored value (for `make bench`).

Not a test: it writes a realistic load (one add_readings per simulated second with every
meter's values) and reads the process's `write_bytes` from /proc/self/io, which counts what
reaches the block layer (WAL frames, checkpoints into the main file, fsyncs). Run it on the
card's file system: tmpfs reports zero.
"""

from __future__ import annotations

import random
import tempfile
from decimal import Decimal
from pathlib import Path

from storage.records import ReadingSet, StoredValue
from storage.store import Store

_QUANTITIES = (
    ("import_active_energy", "kWh", 1),
    ("export_active_energy", "kWh", 1),
    ("voltage_l1", "V", 1),
    ("current_l1", "A", 2),
    ("active_power", "kW", 3),
    ("frequency", "Hz", 2),
)


def _write_bytes() -> int:
    with open("/proc/self/io", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    raise RuntimeError("/proc/self/io has no write_bytes line")


def _meter_values(rng: random.Random, second: int, n_values: int) -> tuple[StoredValue, ...]:
    values = []
    for index in range(n_values):
        quantity, unit, places = _QUANTITIES[index % len(_QUANTITIES)]
        name = quantity if index < len(_QUANTITIES) else f"{quantity}_t{index // 6 % 9 + 1}"
        raw = rng.randint(0, 10**6) + second * 10
        values.append(StoredValue(name, Decimal(raw).scaleb(-places), unit))
    return tuple(values)


def site_readings(n_meters: int, n_values: int, second: int) -> list[ReadingSet]:
    """One commit interval of a polled site: every meter's values at simulated `second`."""
    rng = random.Random(second)
    return [
        ReadingSet(f"meter-{meter:04d}", 1_700_000_000_000 + second * 1000,
                   _meter_values(rng, second, n_values))
        for meter in range(n_meters)
    ]


def bytes_written_per_value(
    n_meters: int = 200, n_values: int = 25, seconds: int = 600, directory: str | None = None,
    max_bytes: int | None = None,
) -> dict[str, float | int | str | None]:
    """Write `seconds` commits of `n_meters` readings of `n_values` values each; report wear.

    Returns bytes written per value, per commit, the database and WAL sizes. `directory` is
    where the temporary database goes (default: the system temp dir; must not be tmpfs).
    With `max_bytes`, eviction runs once the bound is reached and its writes are counted too.
    """
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        path = Path(tmp) / "measure.db"
        store = Store.open(path, max_bytes=max_bytes)
        for meter in range(n_meters):
            store.upsert_meter(f"meter-{meter:04d}", protocol="modbus")
        start = _write_bytes()
        base_ms = 1_700_000_000_000
        for second in range(seconds):
            sets = [
                ReadingSet(f"meter-{meter:04d}", base_ms + second * 1000,
                           _meter_values(rng, second, n_values))
                for meter in range(n_meters)
            ]
            store.add_readings(sets)
        store.close()  # the final checkpoint belongs to the cost
        written = _write_bytes() - start
        db_bytes = path.stat().st_size
    total_values = n_meters * n_values * seconds
    return {
        "n_meters": n_meters,
        "n_values": n_values,
        "seconds": seconds,
        "values": total_values,
        "bytes_written": written,
        "bytes_per_value": round(written / total_values, 1),
        "bytes_per_commit": round(written / seconds),
        "db_bytes_per_value": round(db_bytes / total_values, 1),
        "max_bytes": max_bytes,
        "directory": str(directory or tempfile.gettempdir()),
    }


if __name__ == "__main__":
    import json
    import sys

    meters, values, seconds = (int(arg) for arg in sys.argv[1:4])
    bound = int(sys.argv[4]) if len(sys.argv) > 4 else None
    print(json.dumps(bytes_written_per_value(meters, values, seconds, None, bound)))  # noqa: T201
