"""`[prepay.meters.ID] breaker = "meter"`: validated with the rest of the config (only a
protocol with a `breakers` capability), and wired so that prepay's relay and feedback names of
that meter reach its protocol's breakers while every other name stays on the board."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from core.clock import FakeClock
from drivers.dlms.counters import CounterFile
from drivers.dlms.hdlc import Address
from drivers.dlms.plugin import PLUGIN
from drivers.dlms.server import CosemServer
from drivers.dlms.sim import HdlcServerLink, LoopbackStream
from drivers.dlms.sim_objects import SimObjects
from drivers.plugin import Context
from gateway.config.loader import ConfigError, load_config
from gateway.wiring.prepay import breaker_names, declare_prepay_io, open_breakers

SITE = """
gateway_id = "gw-b"
[storage]
path = "gw.db"
[[bus]]
id = "line"
port = "/dev/ttyB0"
[[bus]]
id = "mb"
port = "/dev/ttyB1"
[[meter]]
id = "flat-7"
bus = "line"
protocol = "dlms"
address = 17
[[meter]]
id = "shop-1"
bus = "mb"
protocol = "modbus"
address = 1
profile = "eastron_sdm630"
[prepay]
timezone = "UTC"
currency = "EUR"
[prepay.tariffs.flat]
currency = "EUR"
versions = [ { effective_from = "2020-01-01", price = "0.30" } ]
[prepay.meters.flat-7]
tariff = "flat"
breaker = "meter"
[prepay.meters.shop-1]
tariff = "flat"
relay = "relay-1"
feedback_input = "aux-1"
"""


def _site(tmp_path: Path, text: str = SITE) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_the_breaker_key_is_validated_with_the_rest(tmp_path: Path) -> None:
    config = load_config(_site(tmp_path))
    assert config.prepay is not None
    own = config.prepay.meters["flat-7"]
    assert (own.breaker, own.relay, own.feedback_input) == (
        "meter", "breaker:flat-7", "breaker:flat-7")
    assert breaker_names(config.prepay) == {"breaker:flat-7": "flat-7"}
    modbus = SITE.replace('relay = "relay-1"', 'breaker = "meter"')
    with pytest.raises(ConfigError) as info:
        load_config(_site(tmp_path, modbus))
    assert any("prepay.meters.shop-1.breaker" in p and "'modbus'" in p
               for p in info.value.problems)
    with pytest.raises(ConfigError) as info:
        load_config(_site(tmp_path, SITE.replace('breaker = "meter"', 'breaker = "gpio"')))
    assert any("prepay.meters.flat-7.breaker" in p for p in info.value.problems)
    with pytest.raises(ConfigError) as info:  # a board relay still needs its output's name
        load_config(_site(tmp_path, SITE.replace('relay = "relay-1"\n', "")))
    assert any("prepay.meters.shop-1.relay" in p for p in info.value.problems)


class Board:
    def __init__(self) -> None:
        self.declared: tuple[list[Any], list[Any]] = ([], [])

    def declare(self, outputs: list[Any], inputs: list[Any]) -> None:
        self.declared = (outputs, inputs)


async def test_the_meters_names_reach_its_breaker_over_its_opened_bus(tmp_path: Path) -> None:
    config = load_config(_site(tmp_path))
    assert config.prepay is not None
    board = Board()
    declare_prepay_io(board, config.prepay)  # type: ignore[arg-type]
    assert [o.name for o in board.declared[0]] == ["relay-1"]  # no board output for flat-7
    assert [i.name for i in board.declared[1]] == ["aux-1"]
    objects = SimObjects(FakeClock().wall_ms)
    far = HdlcServerLink(CosemServer(objects), Address(1, 17, 2))
    assert PLUGIN.open_polled is not None
    meters = {m.id: m for m in config.meters}
    context = Context(open_serial=lambda p: None, events=lambda *e: None, clock=FakeClock(),
                      data_dir=tmp_path)
    bus = PLUGIN.open_polled(config.buses[0], context)
    bus.driver = type(bus.driver)(CounterFile(tmp_path / "c.json"),  # type: ignore[attr-defined]
                                  open_line=lambda: LoopbackStream(far))
    opened: dict[str, Any] = {}
    breakers = open_breakers(config.prepay, meters, lambda: opened, FakeClock())
    assert set(breakers) == {"breaker:flat-7"}
    relays = breakers["breaker:flat-7"]
    relays.drive("breaker:flat-7", False)
    assert relays.input_active("breaker:flat-7") is False  # pending: what was commanded
    await relays.apply_pending()  # type: ignore[attr-defined]
    assert relays.failures == 1 and objects.actions == []  # type: ignore[attr-defined]
    opened["line"] = bus  # the service opened its buses
    await relays.apply_pending()  # type: ignore[attr-defined]
    assert objects.actions == ["disconnect"] and relays.input_active("breaker:flat-7") is False
    objects.output_state = True  # closed at the meter: the next poll reads it
    await bus.read(meters["flat-7"])
    assert relays.input_active("breaker:flat-7") is True
    assert relays.commanded("breaker:flat-7") is False
