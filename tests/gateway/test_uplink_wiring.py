"""Gateway-side command handlers: `read`, and the wmbus plugin's key commands as the
uplink registers them."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app.service import Service
from gateway.config.loader import load_config
from gateway.wiring.protocols import open_buses
from gateway.wiring.uplink import plugin_commands, read_command
from uplink.commands import CommandContext, CommandRefused

CTX = CommandContext("gw-k", "c1", "op", 0.0)
KEY = "00112233445566778899AABBCCDDEEFF"


def service_with_radio(tmp_path: Path) -> Service:
    (tmp_path / "site.toml").write_text(f"""
gateway_id = "gw-k"
[storage]
path = "gw.db"
[board]
state_dir = "{tmp_path / 'board'}"
[[bus]]
id = "radio"
port = "/dev/null"
dongle = "im871a"
link_mode = "T1"
key_file = "{tmp_path / 'keys.json'}"
[[meter]]
id = "water-7"
bus = "radio"
protocol = "wmbus"
address = "33333333"
""")
    service = Service(load_config(tmp_path / "site.toml"))
    service.open()
    service.buses, service.push_sources = open_buses(service.config, service.board,
                                                     service.record_event, service.clock)
    return service


async def test_wmbus_key_set_and_remove_never_echo_the_key(tmp_path: Path) -> None:
    service = service_with_radio(tmp_path)
    try:
        set_key = plugin_commands(service)["wmbus.key.set"]
        result = await set_key({"meter": "water-7", "key": KEY}, CTX)
        assert result == {"meter": "water-7", "key_set": True}
        source = service.push_sources[0]
        assert source.keys.get("33333333") == bytes.fromhex(KEY)  # type: ignore[attr-defined]
        assert (tmp_path / "keys.json").stat().st_mode & 0o077 == 0
        with pytest.raises(CommandRefused, match="bad_key"):
            await set_key({"meter": "water-7", "key": "00zz"}, CTX)
        with pytest.raises(CommandRefused, match="not a configured"):
            await set_key({"meter": "shop-1", "key": KEY}, CTX)
        for bad in ([], {}, 7, None):  # found by make fuzz: a list raised TypeError
            with pytest.raises(CommandRefused, match="bad_args"):
                await set_key({"meter": bad, "key": KEY}, CTX)
        remove = plugin_commands(service)["wmbus.key.remove"]
        assert await remove({"meter": "water-7"}, CTX) == {"meter": "water-7", "removed": True}
        assert source.keys.get("33333333") is None  # type: ignore[attr-defined]
    finally:
        assert service.store is not None
        service.store.close()


async def test_read_refuses_an_unknown_meter(tmp_path: Path) -> None:
    service = service_with_radio(tmp_path)
    try:
        with pytest.raises(CommandRefused, match="unknown_meter: 'nope' is not a config") as info:
            await read_command(service)({"meter": "nope"}, CTX)
        assert info.value.reason == "unknown_meter"
    finally:
        assert service.store is not None
        service.store.close()
