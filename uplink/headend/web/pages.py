"""Server-rendered HTML of the web page, with the meter chart as inline SVG (no script, no
build step, nothing fetched from elsewhere)."""

import time
from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from typing import Any, Final
from urllib.parse import quote

from uplink.headend.web.auth import Account
from uplink.headend.web.data import GatewayRow

CHART_COLOUR: Final = "#d62728"  # the browser test looks for this colour in the screenshot
CHART_W: Final = 760
CHART_H: Final = 260
CHART_POINTS: Final = 600
# A gateway whose last batch is older than this is shown as late.
LATE_MS: Final = 15 * 60 * 1000
STYLE: Final = """body{font-family:sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
th{background:#eee}.online{color:#080}.offline{color:#b00}nav a{margin-right:1em}
.chart{border:1px solid #ccc;background:#fff}"""


def when(ms: int | None) -> str:
    if ms is None:
        return "never"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def page(title: str, body: str, account: Account | None = None) -> str:
    nav = ""
    if account is not None:
        nav = (f'<nav><a href="/">Fleet</a><a href="/anomalies">Anomalies</a>'
               f'<span>{escape(account.name)} ({escape(account.role)})</span> '
               f'<form method="post" action="/logout" style="display:inline">'
               f'<button>Log out</button></form></nav>')
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>{nav}<h1>{escape(title)}</h1>{body}"
            "</body></html>")


def login(error: str = "") -> str:
    msg = f'<p class="offline">{escape(error)}</p>' if error else ""
    return page("Head-end login", msg + (
        '<form method="post" action="/login"><p><label>Account <input name="name" id="name" '
        'autocomplete="username"></label></p><p><label>Password <input type="password" '
        'name="password" id="password" autocomplete="current-password"></label></p>'
        '<p><button id="login" type="submit">Log in</button></p></form>'))


def fleet(rows: list[GatewayRow], account: Account) -> str:
    now = int(time.time() * 1000)
    cells = []
    for r in rows:
        status = r.status or "unknown"
        late = r.last_batch_ms is None or now - r.last_batch_ms > LATE_MS
        cells.append(
            f'<tr><td><a href="/gw/{quote(r.gw)}">{escape(r.gw)}</a></td>'
            f'<td class="{escape(status)}">{escape(status)}</td><td>{when(r.last_batch_ms)}'
            f'{" (late)" if late else ""}</td><td>{r.contiguous}</td><td>{r.anomalies}</td>'
            f"<td>{r.alarms}</td></tr>")
    table = ("<table><tr><th>Gateway</th><th>Status</th><th>Last batch</th><th>Chain head</th>"
             "<th>Anomalies</th><th>Alarms (24 h)</th></tr>" + "".join(cells) + "</table>")
    return page(f"Fleet: {len(rows)} gateways", table, account)


def gateway(gw: str, meters: list[tuple[str, int, dict[str, str]]],
            prepaid: dict[str, dict[str, str]], account: Account,
            health: tuple[int, dict[str, Any]] | None = None) -> str:
    rows = []
    for meter, ts, values in meters:
        pre = prepaid.get(meter, {})
        shown = ", ".join(f"{escape(q)} {escape(v)}" for q, v in list(values.items())[:6])
        rows.append(f'<tr><td><a href="/gw/{quote(gw)}/meter/{quote(meter)}">{escape(meter)}'
                    f"</a></td><td>{when(ts)}</td><td>{shown}</td>"
                    f"<td>{escape(pre.get('credit', ''))}</td>"
                    f"<td>{escape(pre.get('relay', ''))}</td></tr>")
    table = ("<table><tr><th>Meter</th><th>Last reading</th><th>Last values</th>"
             "<th>Credit</th><th>Relay</th></tr>" + "".join(rows) + "</table>")
    return page(f"Gateway {gw}: {len(meters)} meters", table + health_table(health), account)


def health_table(health: tuple[int, dict[str, Any]] | None) -> str:
    """The gateway's last health record (docs/remote.md), or a line saying there is none."""
    if health is None:
        return "<h2>Health</h2><p>No health record yet.</p>"
    ts_ms, h = health
    config = h.get("config") or {}
    failed = ", ".join(f"{name}: {c.get('last_error')}" for name, c in
                       (h.get("components") or {}).items()) or "none"
    rows = [("Reported", when(ts_ms)),
            ("Config version", f"{config.get('version')} ({str(config.get('sha256'))[:12]})"),
            ("Software", " ".join(f"{k} {v}" for k, v in (h.get("version") or {}).items())),
            ("Uptime", f"{h.get('uptime_s')} s"), ("CPU", f"{h.get('cpu_ms')} ms"),
            ("Memory (RSS)", _bytes(h.get("rss_bytes"))),
            ("Disk free", _bytes(h.get("disk_free_bytes"))),
            ("Written per hour", _bytes(h.get("written_bytes_per_h"))),
            ("Temperature", "none offered" if h.get("temperature_mc") is None
             else f"{h['temperature_mc'] / 1000:.1f} °C"),
            ("Outbox", str(h.get("outbox"))), ("Clock synced", str(h.get("clock_synced"))),
            ("Failed components", failed)]
    for bus, info in sorted((h.get("buses") or {}).items()):
        counters = info.get("counters") or {}
        shown = ", ".join(f"{k} {v}" for k, v in counters.items() if v)
        rows.append((f"Bus {bus} ({info.get('protocol')})", shown or "no counts"))
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)
    return f'<h2>Health</h2><table id="health">{cells}</table>'


def _bytes(value: Any) -> str:
    return "unknown" if not isinstance(value, int) else f"{value / 1_000_000:.1f} MB"


def _thin(points: list[tuple[int, Decimal]]) -> list[tuple[int, Decimal]]:
    step = max(1, len(points) // CHART_POINTS)
    return points[::step]


def chart(points: list[tuple[int, Decimal]]) -> str:
    """An SVG line of the points; the y axis spans their range, labelled at both ends."""
    if not points:
        return "<p>No values in this range.</p>"
    pts = _thin(points)
    t0, t1 = pts[0][0], max(pts[-1][0], pts[0][0] + 1)
    lo, hi = min(v for _, v in pts), max(v for _, v in pts)
    span = (hi - lo) or Decimal(1)
    pad = 40
    xy = " ".join(
        f"{pad + (t - t0) * (CHART_W - 2 * pad) / (t1 - t0):.1f},"
        f"{CHART_H - pad - float((v - lo) / span) * (CHART_H - 2 * pad):.1f}" for t, v in pts)
    return (f'<svg class="chart" width="{CHART_W}" height="{CHART_H}" role="img">'
            f'<polyline fill="none" stroke="{CHART_COLOUR}" stroke-width="3" points="{xy}"/>'
            f'<text x="4" y="{pad - 8}" font-size="12">{escape(str(hi))}</text>'
            f'<text x="4" y="{CHART_H - 8}" font-size="12">{escape(str(lo))}</text>'
            f'<text x="{pad}" y="{CHART_H - 8}" font-size="12" dx="60">{when(t0)}</text>'
            f'<text x="{CHART_W - 230}" y="{CHART_H - 8}" font-size="12">{when(t1)}</text>'
            "</svg>")


def meter(gw: str, meter_id: str, series: dict[str, list[tuple[int, Decimal]]], chosen: str,
          since: str, until: str, account: Account) -> str:
    options = "".join(f'<option{" selected" if q == chosen else ""}>{escape(q)}</option>'
                      for q in series)
    form = (f'<form method="get"><label>Quantity <select name="q">{options}</select></label> '
            f'<label>From <input name="from" value="{escape(since)}"></label> '
            f'<label>To <input name="to" value="{escape(until)}"></label> '
            "<button>Show</button></form>")
    points = series.get(chosen, [])
    body = form + f"<h2>{escape(chosen)}: {len(points)} values</h2>" + chart(points)
    return page(f"Meter {meter_id} on {gw}", body, account)


def anomaly_list(rows: list[tuple[str, int, str, str]], account: Account) -> str:
    cells = "".join(f"<tr><td>{escape(gw)}</td><td>{seq}</td><td>{escape(kind)}</td>"
                    f"<td>{escape(detail)}</td></tr>" for gw, seq, kind, detail in rows)
    return page("Chain anomalies", "<table><tr><th>Gateway</th><th>Seq</th><th>Kind</th>"
                f"<th>Detail</th></tr>{cells}</table>", account)
