"""Protocol plugins: gateway/ names protocols in one place only, and a new protocol is one package
plus one line in `PLUGINS` (config validation, open, counters, a poll through the service)."""

from __future__ import annotations

import asyncio
import re
import sys
import textwrap
from pathlib import Path

import pytest

from core.clock import FAKE_EPOCH_MS, FakeClock
from gateway.app.service import Service
from gateway.cli.main import build_parser, main
from gateway.config.loader import BUS_FIELDS, ConfigError, load_config
from gateway.console.commands import COMMANDS
from gateway.wiring import protocols
from gateway.wiring.bus_directory import OpenedBuses
from gateway.wiring.console_ports import console_ports
from gateway.wiring.protocols import PLUGINS
from gateway.wiring.uplink import plugin_commands
from storage.store import Store
from tests.harness.eventually import eventually_async
from tests.harness.lingering import run_checked
from uplink.commands import CommandContext, CommandRefused

ROOT = Path(__file__).resolve().parents[2]
THE_LIST = ROOT / "gateway/wiring/protocols.py"
READ_DEADLINE_S = 20.0  # bounds a broken wait, not a speed requirement
# Names of protocols, of the layers they share and of a protocol library; a letter next to one
# makes another word.
NAMES = sorted({p.name for p in PLUGINS} | {"wmbus", "modbus", "iec62056", "dsmr", "p1", "mbus",
                                             "m-bus", "iec 62056", "pymodbus"})
PATTERN = re.compile(r"(?<![a-z])(" + "|".join(map(re.escape, NAMES)) + r")(?![a-z0-9])",
                     re.IGNORECASE)
# Where gateway/ may still say a protocol's name, and why: a file and a fragment of the line
# each. Empty: help texts and hints come from the plugins (`scan.help`, `silent_hint`).
JUSTIFIED: dict[str, tuple[tuple[str, str], ...]] = {}


def _unjustified(path: Path, line: str) -> bool:
    allowed = JUSTIFIED.get(path.relative_to(ROOT).as_posix(), ())
    return not any(fragment in line for fragment, _why in allowed)


def test_gateway_names_protocols_only_in_the_plugin_list() -> None:
    found = []
    for path in sorted((ROOT / "gateway").rglob("*")):
        if path == THE_LIST or not path.is_file() or path.suffix not in (".py", ".md", ".toml"):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if PATTERN.search(line) and _unjustified(path, line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


def test_plugins_have_unique_names_and_keys() -> None:
    names = [p.name for p in PLUGINS]
    assert len(names) == len(set(names))
    owned: dict[str, str] = {}
    for plugin in PLUGINS:
        for key in plugin.bus_fields:
            assert key not in BUS_FIELDS, f"{plugin.name} redeclares the generic bus key {key}"
            assert key not in owned, f"bus key {key} of {plugin.name} and {owned.get(key)}"
            owned[key] = plugin.name
        assert "address" in plugin.meter_fields, plugin.name


TOY_PLUGIN = '''
"""A toy protocol: every meter answers with its address times its scale, in kWh."""

from decimal import Decimal

from core.errors import Refused
from core.schema import in_range, one_of, opt, positive, req
from drivers.errors import DeviceTimeout
from drivers.plugin import CounterSpec, Found, ProtocolPlugin, ScanCapability
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


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
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


def _site(tmp_path: Path, mode: str = "slow", scale: str = "2") -> Path:
    path = tmp_path / "site.toml"
    path.write_text(textwrap.dedent(TOY_SITE.format(mode=mode, scale=scale)))
    return path


def test_a_toy_plugins_keys_are_validated_all_at_once(tmp_path: Path, toy: object) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_site(tmp_path, mode="medium", scale="0"))
    problems = info.value.problems
    assert any("key `bus[0].toy_mode`" in p and "must be one of" in p for p in problems)
    assert any("key `meter[0].scale`" in p and "greater than 0" in p for p in problems)
    assert len(problems) == 2, problems
    config = load_config(_site(tmp_path))
    assert config.bus("toy-line").protocol == "toy"
    assert config.bus("toy-line").options == {"toy_mode": "slow"}
    assert config.meter("toy-3").options == {"scale": 2}


def test_a_toy_meter_is_polled_stored_and_counted_through_the_service(
        tmp_path: Path, toy: object) -> None:
    service = Service(load_config(_site(tmp_path)))
    run_checked(_run_until_read(service))
    directory = OpenedBuses(service)
    (info,) = directory.buses()
    assert (info.bus_id, info.protocol, info.can_scan) == ("toy-line", "toy", True)
    assert info.hint == "check that the toy is switched on"
    assert info.counters["ok"] >= 1 and info.counters["timeouts"] >= 1
    assert info.counters["other"] == 0 and info.counters["asked"] >= 2  # its own, beside
    assert directory.meter_counters("toy-4")["timeouts"] >= 1
    hits = run_checked(directory.scan("toy-line", 1))
    assert [(h.address, h.known_meter) for h in hits] == [("3", "toy-3"), ("5", None)]


def test_the_console_help_for_scan_lists_every_plugins_scan(toy: object) -> None:
    paragraphs = COMMANDS["scan"].help_paragraphs()
    assert "toy buses: counts the addresses 1..9 aloud." in paragraphs
    able = [p for p in protocols.plugins() if p.scan is not None]
    assert len(paragraphs) == 1 + len(able)
    assert all(any(p.scan.help in line for line in paragraphs) for p in able if p.scan)


def test_the_services_one_clock_reaches_the_buses_and_the_console(
        tmp_path: Path, toy: object) -> None:
    clock = FakeClock()  # never stepped: every wall time the service takes is its epoch
    service = Service(load_config(_site(tmp_path)), clock=clock)
    run_checked(_run_until_read(service))
    assert service.buses["toy-line"].clock is clock  # type: ignore[attr-defined]
    assert service.store is None  # closed at the stop: read the file again
    ports = console_ports(service)
    assert ports.clock is clock and ports.started_ms == FAKE_EPOCH_MS
    store = Store.open(service.config.storage.path)
    try:
        assert store.last_readings("toy-3", 1)[0].ts_ms == FAKE_EPOCH_MS
    finally:
        store.close()


async def _run_until_read(service: Service) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await eventually_async(lambda: service.store and service.store.last_readings("toy-3", 1),
                               READ_DEADLINE_S, "the toy meter's reading")
        assert service.store is not None
        (reading,) = service.store.last_readings("toy-3", 1)
        assert [(v.quantity, str(v.value), v.unit) for v in reading.values] == \
            [("import_active_energy", "6", "kWh")]
        assert await plugin_commands(service)["toy.ping"]({}, CommandContext(
            "gw-toy", "c1", "toy.ping", 0.0)) == {"buses": 1, "mode": "slow"}
    finally:
        stop.set()
        await task


def test_a_toy_plugins_command_line_and_refusals(tmp_path: Path, toy: object) -> None:
    assert build_parser().parse_args(["toy"]).command == "toy"
    assert main(["toy", "--port", str(tmp_path / "ttyNONE")]) == 1  # the opener it was given
    service = Service(load_config(_site(tmp_path)))  # not running: no bus open
    with pytest.raises(CommandRefused, match="no_toy_bus"):
        run_checked(plugin_commands(service)["toy.ping"]({}, CommandContext(
            "gw-toy", "c1", "toy.ping", 0.0)))
