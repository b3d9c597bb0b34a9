"""Disconnect control through the plugin's uplink commands, against the simulated meter."""

from __future__ import annotations

import asyncio
import os
import tty
from pathlib import Path
from typing import Any

import pytest

from core.clock import FakeClock
from core.errors import Refused
from drivers.dlms.hdlc import Address
from drivers.dlms.plugin import PLUGIN
from drivers.dlms.server import CosemServer
from drivers.dlms.sim import HdlcServerLink, PtyMeter, TcpMeter
from drivers.dlms.sim_objects import SimObjects
from drivers.errors import DriverError
from drivers.plugin import Context, SerialParams
from tests.drivers.dlms.test_plugin import Bus, Meter


def _context(tmp_path: Path) -> Context:
    def open_serial(params: SerialParams) -> int:
        fd = os.open(params.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(fd)
        return fd

    return Context(open_serial=open_serial, events=lambda *a: None, clock=FakeClock(),
                   data_dir=tmp_path)


def _handler(op: str, opened: Any) -> Any:
    return PLUGIN.server_commands[op](lambda: [opened])


async def test_disconnect_reconnect_and_state_over_tcp(tmp_path: Path) -> None:
    objects = SimObjects(FakeClock().wall_ms)
    meter = await TcpMeter(CosemServer(objects)).start()
    assert PLUGIN.open_polled is not None
    opened = PLUGIN.open_polled(Bus(kind="tcp", tcp_port=meter.port), _context(tmp_path))
    try:
        with pytest.raises(Refused, match="unknown_meter"):
            await _handler("dlms.disconnect", opened)({"meter": "shop-1"}, None)
        await opened.read(Meter())
        off = await _handler("dlms.disconnect", opened)({"meter": "shop-1"}, None)
        assert off == {"meter": "shop-1", "output_state": False, "control_state": "disconnected"}
        assert objects.output_state is False
        state = await _handler("dlms.breaker", opened)({"meter": "shop-1"}, None)
        assert state["control_state"] == "disconnected"
        on = await _handler("dlms.reconnect", opened)({"meter": "shop-1"}, None)
        assert on["output_state"] is True and objects.actions == ["disconnect", "reconnect"]
        with pytest.raises(Refused, match="bad_args"):
            await _handler("dlms.breaker", opened)({"meter": ["shop-1"]}, None)
    finally:
        await opened.close()
        await meter.stop()


async def test_a_command_waits_for_a_poll_on_the_same_line(tmp_path: Path) -> None:
    objects = SimObjects(FakeClock().wall_ms)
    far = HdlcServerLink(CosemServer(objects), Address(1, 17, 2))
    meter = await PtyMeter(far).start()
    assert PLUGIN.open_polled is not None
    opened = PLUGIN.open_polled(Bus(port=meter.gateway_path), _context(tmp_path))
    try:
        await opened.read(Meter())
        read, off = await asyncio.gather(
            opened.read(Meter()), _handler("dlms.disconnect", opened)({"meter": "shop-1"}, None))
        assert read and off["control_state"] == "disconnected"
        assert opened.counters("shop-1").get("frame_errors", 0) == 0
    finally:
        await opened.close()
        await meter.stop()


async def test_an_unreachable_meter_is_a_refusal_with_the_reason(tmp_path: Path) -> None:
    objects = SimObjects(FakeClock().wall_ms)
    far = HdlcServerLink(CosemServer(objects), Address(1, 17, 2))
    meter = await PtyMeter(far).start()
    assert PLUGIN.open_polled is not None
    opened = PLUGIN.open_polled(Bus(port=meter.gateway_path), _context(tmp_path))
    try:
        await opened.read(Meter(timeout_ms=200))
        far.faults.silent = True
        with pytest.raises(Refused, match="meter_unreachable"):
            await _handler("dlms.disconnect", opened)({"meter": "shop-1"}, None)
        assert objects.output_state is True
    finally:
        await opened.close()
        await meter.stop()


async def test_keys_set_by_command_apply_at_the_next_read_and_are_never_echoed(
        tmp_path: Path) -> None:
    from drivers.dlms.security import Keys
    from drivers.dlms.server import ServerSettings

    keys = Keys(bytes(range(16)), bytes(range(16, 32)))
    objects = SimObjects(FakeClock().wall_ms)
    far = HdlcServerLink(CosemServer(objects, ServerSettings(keys=keys)), Address(1, 17, 2))
    meter = await PtyMeter(far).start()
    assert PLUGIN.open_polled is not None
    opened = PLUGIN.open_polled(Bus(port=meter.gateway_path), _context(tmp_path))
    hls = Meter(options={"client": 1, "authentication": "hls_gmac"})
    try:
        with pytest.raises(DriverError, match=r"key id .shop-1."):
            await opened.read(hls)  # no keys yet
        for kind, value in (("encryption", keys.encryption), ("authentication",
                                                               keys.authentication)):
            result = await _handler("dlms.key.set", opened)(
                {"key_id": "shop-1", "kind": kind, "value": value.hex()}, None)
            assert value.hex() not in str(result).lower()
        assert await opened.read(hls)
        with pytest.raises(Refused, match="bad_key"):
            await _handler("dlms.key.set", opened)(
                {"key_id": "shop-1", "kind": "encryption", "value": "00"}, None)
        removed = await _handler("dlms.key.remove", opened)({"key_id": "shop-1"}, None)
        assert removed == {"key_id": "shop-1", "removed": True}
        assert (tmp_path / "dlms-keys").stat().st_mode & 0o777 == 0o600
    finally:
        await opened.close()
        await meter.stop()
