"""The technician console: bytes typed on the serial line (line editor, login, shell, every
command) with each API call passed through the control socket's JSON-lines codec, and raw
JSON lines on the control socket itself."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Coroutine
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Final

from gateway.console.api import OPERATIONS, ConfigEntry, ExportResult, MeterReading, Role
from gateway.console.codec import to_plain
from gateway.console.ops_config import config_set
from gateway.console.shell import LoginRefused, run_session
from gateway.console.socket import Connection, RemoteApi
from gateway.console.terminal import ByteTerminal
from tests.fuzz.harness import ROOT, InputTimeout, Target
from tests.gateway.console.memory_api import InMemoryApi

SITE_TOML: Final = ROOT / "docs" / "examples" / "site.toml"
ROLES: Final = {"admin": Role.ADMIN, "tech": Role.TECHNICIAN, "view": Role.VIEWER}
TOKENS: Final = (
    b"\r", b"\n", b"\x03", b"\x04", b"\x7f", b"\x08", b"\t", b"\x15", b"\x1b[A", b"\x1b[B",
    b"\x1b[C", b"\x1b[D", b"\x1b[3~", b"\x1b[H", b"\x1b[F", b"\x1bO", b"\x1b[99999999999~",
    b"'", b'"', b"\\", b"yes\r", b"admin\rpw\r", b"topup shop-12 ", b"config set ",
    b"uplink.host ", b"meter[0].address ", b"time set ", b"2026-11-23T17:08:00Z", b"export --to ",
    b"--from 2026-01-01 ", b"log -f ", b"scan radio ", b"relay shop-12 on\r", b"help ",
    b'{"$dec": "1E+999999"}', b'"9999-12-31T23:59:59+23:59"',
)


class FuzzApi(InMemoryApi):
    """InMemoryApi without file writes; `config set` runs the service's real code on a copy."""

    def __init__(self, config_dir: Path) -> None:
        super().__init__()
        self._source = config_dir / "site.toml"

    async def read_meter(self, meter_id: str) -> MeterReading:
        return await super().read_meter("shop-12" if meter_id == "bug" else meter_id)

    async def export(self, directory: str, start: date, end: date) -> ExportResult:
        return ExportResult(directory, [f"readings_{start}_{end}.csv"], 0, 0, 0)

    async def config_set(self, key: str, value: str) -> ConfigEntry:
        shutil.copy(SITE_TOML, self._source)  # every input starts from the same file
        return await config_set(self._source, key, value)


class FuzzAuth:
    async def login(self, name: str, password: str) -> Role:
        if name not in ROLES or not password:
            raise LoginRefused("Wrong name or password.")
        return ROLES[name]


class _Writer:
    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.lines.append(data)


class LoopbackApi:
    """Every call as RemoteApi makes it, through Connection.handle and back (no socket)."""

    def __init__(self, api: Any) -> None:
        self._writer = _Writer()
        self._conn = Connection(api, FuzzAuth(), self._writer)  # type: ignore[arg-type]
        self._conn.user, self._conn.role = "admin", Role.ADMIN

    def __getattr__(self, method: str) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            params = OPERATIONS[method].bind(args, kwargs)
            request = {"id": 1, "method": method, "params": {k: to_plain(v) for k, v in
                                                           params.items()}}
            await self._conn.handle(json.dumps(request).encode())
            return RemoteApi.result_of(method, json.loads(self._writer.lines.pop()))
        return call


class MemoryChannel:
    def __init__(self, data: bytes) -> None:
        self._chunks = [data[i:i + 64] for i in range(0, len(data), 64)]
        self.output = 0

    async def read(self) -> bytes:
        return self._chunks.pop(0) if self._chunks else b""

    def write(self, data: bytes) -> None:
        self.output += len(data)

    def close(self) -> None:
        pass


@cache
def _config_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="fuzz-console-"))


_LOOP: list[asyncio.AbstractEventLoop] = []


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    if not _LOOP:
        _LOOP.append(asyncio.new_event_loop())
    try:
        return _LOOP[0].run_until_complete(coro)
    except InputTimeout:
        _LOOP.pop().close()  # a timed-out task may be left behind: start clean
        raise


def run_console(data: bytes) -> str:
    channel = MemoryChannel(data)
    term = ByteTerminal(channel, idle_logout_s=3600)
    api = LoopbackApi(FuzzApi(_config_dir()))
    _run(run_session(term, api, FuzzAuth()))
    return f"output~2^{channel.output.bit_length()}"  # a rough new-behaviour signal


def run_control(data: bytes) -> str:
    conn = Connection(FuzzApi(_config_dir()), FuzzAuth(), _Writer())  # type: ignore[arg-type]

    async def serve() -> None:
        for line in data.split(b"\n")[:20]:
            await conn.handle(line)
    _run(serve())
    return f"errors={min(conn.errors, 3)}"


def _console_seeds() -> list[bytes]:
    login = b"admin\rpw\r"
    lines = ["status", "meters", "read shop-12", "read bug", "scan radio 5", "relay shop-12 off",
             "credit shop-12", "topup shop-12 25.00 ref-1", "emergency shop-12", "log 5",
             "log -f", "config show", "config check", 'config set uplink.host "h.example"',
             "config set storage.max_mb 2048", "keys show", "uplink flush",
             "time set 2026-11-23T17:08:00Z", "export --to /tmp/x --from 2026-01-01",
             "whoami", "help topup", 'echo "unclosed', "topup shop-12 1E+999999"]
    seeds = [login + line.encode() + b"\ryes\r" for line in lines]
    seeds += [b"tech\rpw\r" + b"\r".join(x.encode() for x in lines) + b"\rlogout\r",
              b"nobody\rx\r" * 4, b"admin\r\x03admin\rpw\rsta\t\r\x1b[A\r\x04"]
    return seeds


def _control_seeds() -> list[bytes]:
    def req(method: str, **params: Any) -> bytes:
        return json.dumps({"id": 1, "method": method, "params": params}).encode()
    login = req("login", user="admin", password="pw")
    calls = [req("status"), req("topup", meter_id="shop-12", amount={"$dec": "2.50"},
                                reference="r"),
             req("set_time", when="2026-11-23T17:08:00+00:00"),
             req("export", directory="/tmp", start="2026-01-01", end="2026-02-01"),
             req("log_lines", after_seq=None, limit=5), req("config_set", key="log.level",
                                                           value='"debug"'),
             req("record_audit", user="x", command="c", args=["a"], outcome="ok"),
             req("scan_bus", bus="radio", seconds=3)]
    return [login + b"\n" + c for c in calls] + [b"\n".join([login, *calls])]


TARGETS: Final = (
    Target("console", _console_seeds, run_console, tokens=TOKENS, weight=0.5),
    Target("control_socket", _control_seeds, run_control, tokens=TOKENS, weight=0.5),
)
