"""Events rows: inserting with a JSON payload and loading EventRecords."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from storage.errors import InvalidRecord, StoreCorrupt
from storage.outbox import chunks, placeholders
from storage.records import SEVERITIES, EventRecord

_SELECT = "SELECT id, kind, ts_ms, meter_id, severity, data FROM events "


def _json_default(obj: object) -> str:
    # Decimal goes as its exact text: JSON numbers would be read back as floats upstream.
    if isinstance(obj, Decimal):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def encode_data(kind: str, data: Mapping[str, Any] | None) -> str:
    """Compact JSON of an event payload; InvalidRecord names the event kind on failure."""
    if data is None:
        return "{}"
    if not isinstance(data, Mapping):
        raise InvalidRecord(f"event {kind!r}: data must be a mapping, not {type(data).__name__}")
    try:
        return json.dumps(
            data, default=_json_default, separators=(",", ":"), sort_keys=True, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise InvalidRecord(f"event {kind!r}: data is not JSON serialisable: {exc}") from exc


def insert(
    conn: sqlite3.Connection,
    kind: str,
    meter_id: str | None,
    data: Mapping[str, Any] | None,
    ts_ms: int,
    severity: str,
) -> int:
    """Insert one event row after validating every field; returns its id."""
    if not isinstance(kind, str) or not kind:
        raise InvalidRecord(f"event kind must be a non-empty str, not {kind!r}")
    if severity not in SEVERITIES:
        raise InvalidRecord(f"event {kind!r}: severity {severity!r} not in {SEVERITIES}")
    if not isinstance(ts_ms, int) or isinstance(ts_ms, bool):
        raise InvalidRecord(f"event {kind!r}: ts_ms must be an int, not {ts_ms!r}")
    if meter_id is not None and not isinstance(meter_id, str):
        raise InvalidRecord(f"event {kind!r}: meter_id must be a str or None")
    cursor = conn.execute(
        "INSERT INTO events (ts_ms, meter_id, kind, severity, data) VALUES (?, ?, ?, ?, ?)",
        (ts_ms, meter_id, kind, severity, encode_data(kind, data)),
    )
    return int(cursor.lastrowid or 0)


def _to_event(row: tuple) -> EventRecord:
    event_id, kind, ts_ms, meter_id, severity, data = row
    try:
        payload = json.loads(data)
    except ValueError as exc:
        raise StoreCorrupt(f"event {event_id} ({kind}): data is not JSON: {exc}") from exc
    return EventRecord(kind, ts_ms, meter_id, severity, payload, event_id)


def recent(conn: sqlite3.Connection, n: int, meter_id: str | None) -> list[EventRecord]:
    """The `n` newest events (of one meter if given), newest first."""
    if meter_id is None:
        rows = conn.execute(_SELECT + "ORDER BY id DESC LIMIT ?", (n,))
    else:
        rows = conn.execute(
            _SELECT + "WHERE meter_id = ? ORDER BY id DESC LIMIT ?", (meter_id, n)
        )
    return [_to_event(row) for row in rows]


def by_ids(conn: sqlite3.Connection, ids: Sequence[int]) -> Mapping[int, EventRecord]:
    """Events keyed by id (the outbox loader of kind `event`)."""
    found: dict[int, EventRecord] = {}
    for part in chunks(list(ids)):
        for row in conn.execute(_SELECT + f"WHERE id IN ({placeholders(len(part))})", part):
            event = _to_event(row)
            found[row[0]] = event
    return found
