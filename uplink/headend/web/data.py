"""What the web page shows, read from either store (SQLite or PostgreSQL)."""

import json
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from uplink.headend.bodies import readable_body
from uplink.headend.db import execute
from uplink.headend.export import SQLITE_METER

# A gateway without a batch for this long is shown as late even if its status says online.
ALARM_WINDOW_MS: Final = 24 * 3600 * 1000
# Points fetched for one chart at most; more are thinned to this (the page is a view).
MAX_SERIES_ROWS: Final = 20_000
RELAY_EVENTS: Final = ("relay_opened", "relay_closed", "relay_restored")


@dataclass(frozen=True, slots=True)
class GatewayRow:
    gw: str
    contiguous: int
    last_batch_ms: int | None
    status: str | None
    anomalies: int
    alarms: int


def _json(store: Any, field: str) -> str:
    return f"body ->> '{field}'" if store.backend == "postgresql" else \
        f"json_extract(body, '$.{field}')"


def _meter(store: Any) -> str:
    return "meter" if store.backend == "postgresql" else SQLITE_METER


def _body(raw: Any) -> dict[str, Any]:
    return raw if isinstance(raw, dict) else json.loads(raw)


def fleet(store: Any) -> list[GatewayRow]:
    last = ("g.last_batch_ms" if store.backend == "postgresql" else
            "(SELECT max(received_ms) FROM batches b WHERE b.gw = g.gw)")
    since = int(time.time() * 1000) - ALARM_WINDOW_MS
    alarms = dict(execute(store, f"SELECT gw, count(*) FROM records WHERE kind = 'event' AND "
                          f"ts_ms >= %s AND {_json(store, 's')} IN ('error', 'critical') "
                          f"GROUP BY gw", (since,)))
    anomalies = dict(execute(store, "SELECT gw, count(*) FROM anomalies WHERE kind <> 'gap' "
                             "GROUP BY gw"))
    rows = execute(store, f"SELECT g.gw, g.contiguous, {last}, s.status FROM gateways g "
                   "LEFT JOIN gateway_status s ON s.gw = g.gw ORDER BY g.gw")
    return [GatewayRow(gw, int(c), None if lb is None else int(lb), st,
                       int(anomalies.get(gw, 0)), int(alarms.get(gw, 0)))
            for gw, c, lb, st in rows]


def meters(store: Any, gw: str) -> list[tuple[str, int, dict[str, str]]]:
    """(meter, time of its last reading, its last values) for every meter of `gw`."""
    out = []
    names = [r[0] for r in execute(
        store, f"SELECT DISTINCT {_meter(store)} FROM records WHERE gw = %s AND kind = "
        f"'reading' ORDER BY 1", (gw,)) if r[0] is not None]
    for meter in names:
        row = execute(store, f"SELECT ts_ms, body FROM records WHERE gw = %s AND kind = "
                      f"'reading' AND {_meter(store)} = %s ORDER BY ts_ms DESC LIMIT 1",
                      (gw, meter)).fetchone()
        out.append((meter, int(row[0]), readable_body("reading", _body(row[1]))["values"]))
    return out


def prepaid(store: Any, gw: str) -> dict[str, dict[str, str]]:
    """Per prepaid meter: the balance after its last ledger entry and its relay state."""
    out: dict[str, dict[str, str]] = {}
    for meter, raw in execute(store, f"SELECT {_meter(store)}, body FROM records WHERE gw = %s "
                              "AND kind = 'ledger' ORDER BY id", (gw,)):
        entry = _body(raw).get("b") or {}
        if meter and entry.get("balance_after") is not None:
            units = Decimal(int(entry["balance_after"])).scaleb(-4)
            out.setdefault(meter, {})["credit"] = f"{units:.2f}"
    for meter, name in execute(store, f"SELECT {_meter(store)}, {_json(store, 'e')} FROM records"
                               f" WHERE gw = %s AND kind = 'event' AND {_json(store, 'e')} IN "
                               "(%s, %s, %s) ORDER BY id", (gw, *RELAY_EVENTS)):
        if meter:
            out.setdefault(meter, {})["relay"] = "open" if name == "relay_opened" else "closed"
    return out


def series(store: Any, gw: str, meter: str, since_ms: int, until_ms: int
           ) -> dict[str, list[tuple[int, Decimal]]]:
    """Numeric values per quantity of one meter's readings and intervals in the range."""
    out: dict[str, list[tuple[int, Decimal]]] = {}
    rows = execute(store, f"SELECT ts_ms, kind, body FROM records WHERE gw = %s AND "
                   f"{_meter(store)} = %s AND kind IN ('reading', 'interval') AND ts_ms >= %s "
                   f"AND ts_ms < %s ORDER BY ts_ms LIMIT {MAX_SERIES_ROWS}",
                   (gw, meter, since_ms, until_ms))
    for ts, kind, raw in rows:
        values = readable_body("reading", _body(raw)).get("values", {}) \
            if kind == "reading" else _body(raw).get("b", {}).get("values", {})
        for q, text in values.items():
            try:
                out.setdefault(q, []).append((int(ts), Decimal(text)))
            except (InvalidOperation, TypeError):
                continue  # text values (serial number, meter time) are not charted
    return out


def anomalies(store: Any, limit: int = 500) -> list[tuple[str, int, str, str]]:
    return [(r[0], int(r[1]), r[2], r[3]) for r in execute(
        store, "SELECT gw, seq, kind, detail FROM anomalies ORDER BY ts_ms DESC LIMIT %s",
        (limit,))]


def last_reading_ms(store: Any, gw: str, meter: str) -> int | None:
    row = execute(store, f"SELECT max(ts_ms) FROM records WHERE gw = %s AND kind = 'reading' "
                  f"AND {_meter(store)} = %s", (gw, meter)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def latest_health(store: Any, gw: str) -> tuple[int, dict[str, Any]] | None:
    """The newest `health` record of `gw` (docs/remote.md): its time and fields."""
    row = execute(store, "SELECT ts_ms, body FROM records WHERE gw = %s AND kind = 'health' "
                  "ORDER BY id DESC LIMIT 1", (gw,)).fetchone()
    return None if row is None else (int(row[0]), _body(row[1]))
