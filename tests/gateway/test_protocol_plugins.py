"""Protocol plugins: gateway/ names protocols in one place only, and a new protocol is one package
plus one line in `PLUGINS` (config validation, open, counters, a poll through the service)."""

from __future__ import annotations

import asyncio
import re
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
from tests.gateway.toy_protocol import READ_DEADLINE_S, toy_site
from tests.harness.eventually import eventually_async
from tests.harness.lingering import run_checked
from uplink.commands import CommandContext, CommandRefused

ROOT = Path(__file__).resolve().parents[2]
THE_LIST = ROOT / "gateway/wiring/protocols.py"
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


def test_a_toy_plugins_keys_are_validated_all_at_once(tmp_path: Path, toy: object) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(toy_site(tmp_path, mode="medium", scale="0"))
    problems = info.value.problems
    assert any("key `bus[0].toy_mode`" in p and "must be one of" in p for p in problems)
    assert any("key `meter[0].scale`" in p and "greater than 0" in p for p in problems)
    assert len(problems) == 2, problems
    config = load_config(toy_site(tmp_path))
    assert config.bus("toy-line").protocol == "toy"
    assert config.bus("toy-line").options == {"toy_mode": "slow"}
    assert config.meter("toy-3").options == {"scale": 2}


def test_a_toy_meter_is_polled_stored_and_counted_through_the_service(
        tmp_path: Path, toy: object) -> None:
    service = Service(load_config(toy_site(tmp_path)))
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
    service = Service(load_config(toy_site(tmp_path)), clock=clock)
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
    service = Service(load_config(toy_site(tmp_path)))  # not running: no bus open
    with pytest.raises(CommandRefused, match="no_toy_bus"):
        run_checked(plugin_commands(service)["toy.ping"]({}, CommandContext(
            "gw-toy", "c1", "toy.ping", 0.0)))


def test_the_shipped_plugins_console_commands_have_names_of_their_own() -> None:
    from gateway.console.protocol_commands import all_commands

    names = [c.name for p in PLUGINS for c in p.console_commands]
    assert len(names) == len(set(names)) and set(names) <= set(all_commands())
    assert "registers" in names  # the Modbus one: the check looks at something
