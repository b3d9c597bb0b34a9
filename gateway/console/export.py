"""The `export` operation's work: readings, events and ledger of a period as CSV files.

Columns are documented in docs/console.md. It runs in a worker thread on a Store of its own
(the service's Store belongs to the event loop), reading in chunks so the writer waits at most
one chunk for the database.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.money import MONEY_SCALE
from gateway.config.loader import GatewayConfig
from gateway.console.api import ExportResult
from gateway.console.ops_common import utc
from storage import ledger
from storage.errors import StorageError
from storage.store import Store

LOGGER = logging.getLogger(__name__)

READING_COLUMNS = ["meter_id", "time_utc", "ts_ms", "quantity", "value", "unit", "flags"]
EVENT_COLUMNS = ["event_id", "time_utc", "ts_ms", "meter_id", "kind", "severity", "data"]
LEDGER_COLUMNS = ["entry_id", "time_utc", "ts_ms", "meter_id", "kind", "amount", "credit", "debt",
                  "emergency", "balance_after", "key"]
EXPORT_CHUNK_ROWS = 5000  # rows per query: the writer waits at most one chunk for the database


def _day_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def _stamp(ms: int) -> str:
    return utc(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def export_in_own_store(db: Path, config: GatewayConfig, target: Path, start: date, end: date
                         ) -> ExportResult:
    """The export on a worker thread, through a Store of its own opened there: the service's
    Store belongs to the loop (docs/storage.md), and hours of rows must not stall the polls."""
    store = Store.open(db, create=False)
    try:
        return _export_period(store, config, target, start, end)
    finally:
        store.close()


def _export_period(store: Store, config: GatewayConfig, target: Path, start: date, end: date
                   ) -> ExportResult:
    """Write readings_, events_ and ledger_START_END.csv into `target`; [start, end] in UTC."""
    lo, hi = _day_ms(start), _day_ms(end + timedelta(days=1))
    suffix = f"{start.isoformat()}_{end.isoformat()}.csv"
    counts = []
    for name, columns, rows in (
        ("readings", READING_COLUMNS, _reading_rows(store, config, lo, hi)),
        ("events", EVENT_COLUMNS, _table_rows(store, _EVENTS_SQL, lo, hi)),
        ("ledger", LEDGER_COLUMNS, _ledger_rows(store, lo, hi)),
    ):
        counts.append(_write_csv(target / f"{name}_{suffix}", columns, rows))
    LOGGER.info("export_written", extra={"dir": str(target), "readings": counts[0],
                                         "events": counts[1], "ledger": counts[2]})
    files = [f"{name}_{suffix}" for name in ("readings", "events", "ledger")]
    return ExportResult(str(target), files, counts[0], counts[1], counts[2])


def _write_csv(path: Path, columns: list[str], rows: Iterator[list[Any]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(row)
            count += 1
        handle.flush()
        os.fsync(handle.fileno())  # the technician pulls the stick right after
    return count


def _reading_rows(store: Store, config: GatewayConfig, lo: int, hi: int
                  ) -> Iterator[list[Any]]:
    for meter in config.meters:
        try:
            sets = store.readings_between(meter.id, lo, hi)
        except StorageError:
            continue  # a meter never stored (added to the config, not yet read)
        for rs in sets:
            for v in rs.values:
                yield [rs.meter_id, _stamp(rs.ts_ms), rs.ts_ms, v.quantity, str(v.value), v.unit,
                       rs.flags]


_EVENTS_SQL = ("SELECT id, ts_ms, meter_id, kind, severity, data FROM events "
               "WHERE id > ? AND ts_ms >= ? AND ts_ms < ? ORDER BY id LIMIT ?")


def _table_rows(store: Store, sql: str, lo: int, hi: int) -> Iterator[list[Any]]:
    after = 0
    while True:
        with store.transaction() as tx:
            rows = tx.execute(sql, (after, lo, hi, EXPORT_CHUNK_ROWS)).fetchall()
        for event_id, ts, meter, kind, severity, data in rows:
            yield [event_id, _stamp(ts), ts, meter or "", kind, severity,
                   json.dumps(json.loads(data), sort_keys=True)]
        if len(rows) < EXPORT_CHUNK_ROWS:
            return
        after = rows[-1][0]


def _ledger_rows(store: Store, lo: int, hi: int) -> Iterator[list[Any]]:
    after = 0
    while True:
        with store.transaction() as tx:
            entries = ledger.entries(tx, after_id=after, limit=EXPORT_CHUNK_ROWS)
        for e in entries:
            if lo <= e.ts_ms < hi:
                yield [e.id, _stamp(e.ts_ms), e.ts_ms, e.meter_id, e.kind,
                       *(str(Decimal(x) / MONEY_SCALE) for x in
                         (e.amount, e.credit, e.debt, e.emergency, e.balance_after or 0)), e.key]
        if len(entries) < EXPORT_CHUNK_ROWS:
            return
        after = entries[-1].id or after
