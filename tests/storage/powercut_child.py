"""Child of test_powercut: writes readings and events forever, printing ids after each commit."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from storage.records import ReadingSet, StoredValue
from storage.store import Store


def main(path: str) -> None:
    store = Store.open(path)
    step = 0
    while True:
        step += 1
        sets = [
            ReadingSet(f"m{meter}", step, (
                StoredValue("import_active_energy", Decimal(step * 10 + meter).scaleb(-2), "kWh"),
                StoredValue("note", "x" * (step % 300), ""),
            ))
            for meter in range(5)
        ]
        ids = store.add_readings(sets)
        print("R", *ids, flush=True)
        event_id = store.add_event("tick", meter_id="m0", data={"step": step}, ts_ms=step)
        print("E", event_id, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
