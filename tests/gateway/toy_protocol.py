"""A toy protocol as one package outside the tree, and a site that uses it: what the plugin
tests add as the one new line of `PLUGINS` (the fixture `toy` in tests/gateway/conftest.py)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.wiring import protocols

READ_DEADLINE_S = 20.0  # bounds a broken wait, not a speed requirement

TOY_PLUGIN = '''
"""A toy protocol: every meter answers with its address times its scale, in kWh."""

from decimal import Decimal

from core.errors import Refused
from core.schema import in_range, one_of, opt, positive, req
from drivers.errors import DeviceTimeout
from drivers.plugin import ConsoleCommand, CounterSpec, Found, ProtocolPlugin, ScanCapability
from drivers.readings import Sample


class ToyBus:
    def __init__(self, bus, context):
        self.mode = bus.options["toy_mode"]
        self.clock = context.clock
        self.counts = {}

    async def read(self, meter):
        counts = self.counts.setdefault(meter.id, {"asked": 0, "answers": 0, "silent": 0})
        counts["asked"] += 1
        if meter.options["scale"] == 7:
            counts["silent"] += 1
            raise DeviceTimeout(f"toy meter {meter.id} is silent")
        counts["answers"] += 1
        value = Decimal(int(meter.address) * meter.options["scale"])
        return [Sample("import_active_energy", value, "kWh")]

    def counters(self, meter_id):
        return dict(self.counts.get(meter_id, {}))

    async def close(self):
        pass


async def _scan(opened, meters, seconds):
    return [Found("3", "a toy"), Found("5", "a toy")]


def _register_cli(sub, open_port):
    toy = sub.add_parser("toy", help="the toy protocol")
    toy.add_argument("--port")
    toy.set_defaults(func=lambda args: open_port(args.port) and 0)


def _ping(opened):
    async def ping(args, ctx):
        if not opened():
            raise Refused("no_toy_bus")
        return {"buses": len(opened()), "mode": opened()[0].mode}
    return ping


async def _mode(opened, args):
    if args:
        raise ValueError("toymode takes no words")
    return [f"mode {opened.mode}", f"asked {sum(c['asked'] for c in opened.counts.values())}"]


async def _crash(opened, args):
    raise RuntimeError("the toy broke")


async def _wake(opened, args):
    opened.mode = "fast"
    return [f"woke {' '.join(args) or 'all'}"]


PLUGIN = ProtocolPlugin(
    name="toy",
    kind="polled",
    bus_fields={"toy_mode": opt(str, "fast", one_of("fast", "slow"))},
    meter_fields={"address": req(int, in_range(1, 9)), "scale": opt(int, 1, positive)},
    counters=CounterSpec(ok="answers", timeouts=frozenset({"silent"}),
                         not_errors=frozenset({"asked"})),
    open_polled=ToyBus,
    scan=ScanCapability(_scan, "counts the addresses 1..9 aloud."),
    silent_hint="check that the toy is switched on",
    server_commands={"toy.ping": _ping},
    console_commands=(
        ConsoleCommand("toymode", "", "show the toy's mode", _mode, role="viewer"),
        ConsoleCommand("toywake", "[ADDRESS]", "wake the toy up", _wake, changes=True),
        ConsoleCommand("toycrash", "", "a command with a bug", _crash, role="viewer"),
    ),
    cli=_register_cli,
)
'''

TOY_SITE = """
gateway_id = "gw-toy"
[storage]
path = "gw.db"
commit_interval_ms = 50
[board]
state_dir = "board"
[[bus]]
id = "toy-line"
port = "/dev/ttyTOY0"
toy_mode = "{mode}"
[[meter]]
id = "toy-3"
bus = "toy-line"
protocol = "toy"
address = 3
scale = {scale}
poll_interval_s = 1
[[meter]]
id = "toy-4"
bus = "toy-line"
protocol = "toy"
address = 4
scale = 7
poll_interval_s = 1
"""


def install_toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The toy package on sys.path and its plugin as the one new line of the list."""
    package = tmp_path / "pkgs" / "toyproto"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""A toy protocol package."""\n')
    (package / "plugin.py").write_text(TOY_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    from toyproto.plugin import PLUGIN  # type: ignore[import-not-found]

    monkeypatch.setattr(protocols, "PLUGINS", (*protocols.PLUGINS, PLUGIN))
    yield PLUGIN
    sys.modules.pop("toyproto.plugin", None)
    sys.modules.pop("toyproto", None)


def toy_site(tmp_path: Path, mode: str = "slow", scale: str = "2") -> Path:
    path = tmp_path / "site.toml"
    path.write_text(textwrap.dedent(TOY_SITE.format(mode=mode, scale=scale)))
    return path
