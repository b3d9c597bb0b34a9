"""How far the gateway holds each series of records a meter keeps (a load profile, billing
closures): the newest instant stored per meter and series.

A dated reading set (`ReadingSet.series` set, flag FLAG_METER_RECORD) is a value the meter kept
for an instant and handed over later. Its mark is advanced in the transaction that stores the
set, so the mark never claims a row a power cut took back; the service drops a dated set at or
before its mark (read twice, stored once) and tells the plugin where to read on from.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from storage.records import ReadingSet


def marks(conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
    """(meter id, series) -> the newest instant stored (ms)."""
    rows = conn.execute(
        "SELECT m.id, r.series, r.until_ms FROM meter_records r JOIN meters m ON m.mid = r.meter")
    return {(meter, series): until for meter, series, until in rows}


def newest_of(sets: Iterable[ReadingSet]) -> dict[tuple[str, str], int]:
    """The newest instant of each (meter, series) among dated sets."""
    newest: dict[tuple[str, str], int] = {}
    for reading in sets:
        if reading.series:
            key = (reading.meter_id, reading.series)
            newest[key] = max(reading.ts_ms, newest.get(key, reading.ts_ms))
    return newest


def advance(conn: sqlite3.Connection, mid: int, series: str, until_ms: int) -> None:
    """Move the mark forward (never back: an older set read again changes nothing)."""
    conn.execute(
        "INSERT INTO meter_records (meter, series, until_ms) VALUES (?, ?, ?) "
        "ON CONFLICT (meter, series) DO UPDATE SET until_ms = max(until_ms, excluded.until_ms)",
        (mid, series, until_ms))
