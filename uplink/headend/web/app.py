"""`gateway-headend web`: the read-only page over HTTP (stdlib server, one store connection
per request, so SQLite readers and PostgreSQL connections never cross threads)."""

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlparse

from uplink.headend.db import open_for_update, open_store
from uplink.headend.export import instant_text_ms
from uplink.headend.web import data, pages
from uplink.headend.web.auth import Account, Sessions, add_account, authenticate

COOKIE: Final = "headend_session"
MAX_FORM_BYTES: Final = 4096
DEFAULT_RANGE: Final = timedelta(days=1)


class WebApp:
    def __init__(self, db: str) -> None:
        self.db = db
        self.sessions = Sessions()

    @contextlib.contextmanager
    def store(self) -> Iterator[Any]:
        store: Any = open_store(self.db, create=False)
        try:
            yield store
        finally:
            store.close()


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


class Handler(BaseHTTPRequestHandler):
    app: WebApp  # set on the subclass made by `make_server`

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the page is read-only; access logs belong to a reverse proxy

    def _send(self, status: int, html: str, headers: dict[str, str] | None = None) -> None:
        body = html.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, to: str, cookie: str | None = None) -> None:
        headers = {"Location": to}
        if cookie is not None:
            headers["Set-Cookie"] = cookie
        self._send(HTTPStatus.SEE_OTHER, "", headers)

    def _token(self) -> str | None:
        jar = SimpleCookie(self.headers.get("Cookie", ""))
        return jar[COOKIE].value if COOKIE in jar else None

    def _form(self) -> dict[str, str]:
        length = min(int(self.headers.get("Content-Length", "0") or 0), MAX_FORM_BYTES)
        fields = parse_qs(self.rfile.read(length).decode("utf-8", errors="replace"))
        return {k: v[0] for k, v in fields.items()}

    def do_POST(self) -> None:
        path = urlparse(self.path).path
        if path == "/logout":
            self.app.sessions.close(self._token())
            self._redirect("/login", f"{COOKIE}=; Max-Age=0; Path=/")
            return
        if path != "/login":
            self._send(HTTPStatus.NOT_FOUND, pages.page("Not found", ""))
            return
        form = self._form()
        with self.app.store() as store:
            account = authenticate(store, form.get("name", ""), form.get("password", ""))
        if account is None:
            self._send(HTTPStatus.UNAUTHORIZED, pages.login("Unknown account or wrong password"))
            return
        token = self.app.sessions.open(account)
        self._redirect("/", f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/")

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/login":
            self._send(HTTPStatus.OK, pages.login())
            return
        account = self.app.sessions.get(self._token())
        if account is None:
            self._redirect("/login")
            return
        parts = [unquote(p) for p in url.path.split("/") if p]
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        route = self._route(parts)
        if route is None:
            self._send(HTTPStatus.NOT_FOUND, pages.page("Not found", "", account))
            return
        with self.app.store() as store:
            status, html = route(store, account, parts, query)
        self._send(status, html)

    def _route(self, parts: list[str]) -> Callable[..., tuple[int, str]] | None:
        if not parts:
            return _fleet
        if parts == ["anomalies"]:
            return _anomalies
        if len(parts) == 2 and parts[0] == "gw":
            return _gateway
        if len(parts) == 4 and parts[0] == "gw" and parts[2] == "meter":
            return _meter
        return None


def _forbidden(account: Account) -> tuple[int, str]:
    return HTTPStatus.FORBIDDEN, pages.page("Not yours to see", "", account)


def _fleet(store: Any, account: Account, parts: list[str], q: dict[str, str]) -> tuple[int, str]:
    rows = [r for r in data.fleet(store) if account.may_see(r.gw)]
    return HTTPStatus.OK, pages.fleet(rows, account)


def _anomalies(store: Any, account: Account, parts: list[str],
               q: dict[str, str]) -> tuple[int, str]:
    rows = [r for r in data.anomalies(store) if account.may_see(r[0])]
    return HTTPStatus.OK, pages.anomaly_list(rows, account)


def _gateway(store: Any, account: Account, parts: list[str],
             q: dict[str, str]) -> tuple[int, str]:
    gw = parts[1]
    if not account.may_see(gw):
        return _forbidden(account)
    meters = [m for m in data.meters(store, gw) if account.may_see(gw, m[0])]
    return HTTPStatus.OK, pages.gateway(gw, meters, data.prepaid(store, gw), account,
                                        data.latest_health(store, gw))


def _meter(store: Any, account: Account, parts: list[str], q: dict[str, str]) -> tuple[int, str]:
    gw, meter = parts[1], parts[3]
    if not account.may_see(gw, meter):
        return _forbidden(account)
    newest = data.last_reading_ms(store, gw, meter) or 0
    until = instant_text_ms(q.get("to", ""), newest + 1)
    since = instant_text_ms(q.get("from", ""), until - int(DEFAULT_RANGE.total_seconds() * 1000))
    series = data.series(store, gw, meter, since, until)
    chosen = q.get("q") or next(iter(series), "")
    return HTTPStatus.OK, pages.meter(gw, meter, series, chosen, _iso(since), _iso(until),
                                      account)


def make_server(db: str, host: str, port: int) -> ThreadingHTTPServer:
    app = WebApp(db)
    handler = type("BoundHandler", (Handler,), {"app": app})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def cmd_web(args: argparse.Namespace) -> int:
    host, _, port = args.listen.rpartition(":")
    open_store(args.db, create=False).close()  # a wrong --db fails now, not on first request
    server = make_server(args.db, host or "127.0.0.1", int(port))
    sys.stderr.write(f"head-end web page on http://{args.listen}/\n")
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.server_close()
    return 0


def cmd_accounts(args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\n")
    store: Any = open_for_update(args.db)
    try:
        add_account(store, args.name, password, args.role,
                    args.gateways.split(",") if args.gateways else None,
                    args.meters.split(",") if args.meters else None)
    finally:
        store.close()
    return 0


def register(sub: Any) -> None:
    web = sub.add_parser("web", help="serve the read-only web page")
    web.add_argument("--db", required=True, help="head-end database file or postgresql:// URL")
    web.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT")
    web.set_defaults(func=cmd_web)
    acc = sub.add_parser("accounts", help="add or update a web page account (password on stdin)")
    acc.add_argument("action", choices=("add",))
    acc.add_argument("name")
    acc.add_argument("--role", default="viewer", choices=("viewer", "technician", "admin"))
    acc.add_argument("--gateways", help="comma-separated: only these gateways")
    acc.add_argument("--meters", help="comma-separated: only these meters")
    acc.add_argument("--db", required=True)
    acc.set_defaults(func=cmd_accounts)
