"""Streaming export of stored records (readings, intervals, ledger, events, results) as JSON
lines or CSV, by gateway, meter, kind and time range, on either store.

Rows are read through a cursor and written one by one (a PostgreSQL server-side cursor, an
SQLite statement stepped lazily), so a year of one site takes constant memory.
"""

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Final, Protocol

from uplink.headend.bodies import readable_body

# Names a back office uses for the record kinds (the wire names are accepted as well).
KIND_ALIASES: Final = {"readings": "reading", "intervals": "interval", "ledger": "ledger",
                       "events": "event", "results": "cmd_result", "billing": "billing"}
# Rows fetched per round trip of the server-side cursor.
FETCH_ROWS: Final = 2000
RECORD_COLUMNS: Final = ("gw", "id", "seq", "kind", "t_ms", "meter", "body")
# The meter a record is about, in an SQLite body: readings, events, ledger entries.
SQLITE_METER: Final = ("COALESCE(json_extract(body, '$.meter'), json_extract(body, '$.m'), "
                       "json_extract(body, '$.b.meter_id'))")
READING_COLUMNS: Final = ("gw", "meter", "id", "t_ms", "quantity", "value")


class ExportSource(Protocol):
    backend: str


@dataclass(frozen=True, slots=True)
class ExportQuery:
    gw: str | None = None
    meter: str | None = None
    kinds: tuple[str, ...] = ()
    since_ms: int | None = None
    until_ms: int | None = None  # exclusive


def kind_name(text: str) -> str:
    return KIND_ALIASES.get(text, text)


def _where(q: ExportQuery, mark: str, meter_expr: str) -> tuple[str, list[Any]]:
    parts: list[str] = []
    args: list[Any] = []
    for cond, value in ((f"gw = {mark}", q.gw), (f"{meter_expr} = {mark}", q.meter),
                        (f"ts_ms >= {mark}", q.since_ms), (f"ts_ms < {mark}", q.until_ms)):
        if value is not None:
            parts.append(cond)
            args.append(value)
    if q.kinds:
        parts.append("kind IN (" + ", ".join([mark] * len(q.kinds)) + ")")
        args.extend(q.kinds)
    return (" WHERE " + " AND ".join(parts)) if parts else "", args


def _rows(store: Any, q: ExportQuery) -> Iterator[tuple[Any, ...]]:
    if store.backend == "postgresql":
        where, args = _where(q, "%s", "meter")
        sql = ("SELECT gw, id, seq, kind, ts_ms, meter, body::text FROM records" + where +
               " ORDER BY gw, id")
        # A server-side cursor lives in a transaction; it only reads, so it never blocks
        # the workers' writes.
        with store.conn.transaction(), store.conn.cursor(name="export") as cur:
            cur.itersize = FETCH_ROWS
            cur.execute(sql.encode(), args)
            yield from cur
        return
    meter = SQLITE_METER
    where, args = _where(q, "?", meter)
    yield from store.db.execute(f"SELECT gw, id, seq, kind, ts_ms, {meter}, body FROM records"
                                f"{where} ORDER BY gw, id", args)


def stream_records(store: Any, q: ExportQuery) -> Iterator[dict[str, Any]]:
    """Matching records as dicts (gw, id, seq, kind, t_ms, meter, body), by gateway and id."""
    for gw, rid, seq, kind, ts_ms, meter, body in _rows(store, q):
        yield {"gw": gw, "id": int(rid), "seq": int(seq), "kind": kind, "t_ms": int(ts_ms),
               "meter": meter, "body": readable_body(kind, json.loads(body))}


def write_jsonl(records: Iterator[dict[str, Any]], out: IO[str]) -> int:
    n = 0
    for rec in records:
        out.write(json.dumps(rec, separators=(",", ":")) + "\n")
        n += 1
    return n


def write_csv(records: Iterator[dict[str, Any]], out: IO[str], *, flat_readings: bool) -> int:
    """CSV; with `flat_readings` one row per reading value (gw, meter, id, t_ms, quantity,
    value: exact decimal text), else one row per record with its body as JSON."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(READING_COLUMNS if flat_readings else RECORD_COLUMNS)
    n = 0
    for rec in records:
        if flat_readings:
            for quantity, value in rec["body"].get("values", {}).items():
                writer.writerow((rec["gw"], rec["meter"], rec["id"], rec["t_ms"], quantity,
                                 value))
        else:
            writer.writerow((rec["gw"], rec["id"], rec["seq"], rec["kind"], rec["t_ms"],
                             rec["meter"], json.dumps(rec["body"], separators=(",", ":"))))
        n += 1
    return n


def instant_text_ms(text: str, default: int) -> int:
    """A page's time field (ISO 8601, UTC unless an offset is given, or Unix ms)."""
    from datetime import UTC, datetime
    if not text:
        return default
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)
