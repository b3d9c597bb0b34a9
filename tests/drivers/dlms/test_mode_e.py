"""Mode E: the IEC 62056-21 sign-on at 300 baud, HDLC at the switched baud, against the
simulated optical meter (in memory and over a real pty through the plugin)."""

from __future__ import annotations

import os
import termios
import tty
from pathlib import Path

import pytest

from core.clock import FakeClock
from drivers.dlms.client import Credentials
from drivers.dlms.counters import CounterFile
from drivers.dlms.hdlc import Address
from drivers.dlms.mode_e import sign_on
from drivers.dlms.plugin import PLUGIN
from drivers.dlms.read_profiles import read_profile
from drivers.dlms.reader import DlmsBus, MeterSettings
from drivers.dlms.server import CosemServer
from drivers.dlms.sim import HdlcServerLink, LoopbackStream, ModeEFront, PtyMeter
from drivers.dlms.sim_objects import SimObjects
from drivers.errors import DeviceRejected
from drivers.plugin import Context, SerialParams
from drivers.transport.stream import LineSettings
from tests.drivers.dlms.test_plugin import Bus, Meter


def _front(ident: bytes = b"/MGW5\\2SIMDLMS\r\n") -> ModeEFront:
    far = HdlcServerLink(CosemServer(SimObjects(FakeClock().wall_ms)), Address(1, 17, 2))
    return ModeEFront(far, ident)


async def test_sign_on_switches_to_the_offered_baud_and_hdlc_follows(tmp_path: Path) -> None:
    front = _front()
    line = LoopbackStream(front)
    bus = DlmsBus(CounterFile(tmp_path / "c.json"), open_line=lambda: line, sign_on=sign_on)
    meter = MeterSettings("m1", Credentials(), read_profile("generic"))
    assert await bus.read_meter(meter)
    assert await bus.read_meter(meter)  # DISC took the meter back to its sign-on
    assert front.sign_ons == 2
    assert line.settings == LineSettings(9600, 8, "N", 1)


async def test_a_meter_without_mode_e_is_refused() -> None:
    line = LoopbackStream(_front(b"/MGW5SIMDLMS\r\n"))
    with pytest.raises(DeviceRejected, match="mode E"):
        await sign_on(line)
    assert line.settings == LineSettings(300, 7, "E", 1)  # still at the sign-on's line


async def test_the_plugin_reads_an_optical_head_in_mode_e_over_a_pty(tmp_path: Path) -> None:
    front = _front(b"/MGW4\\2SIMDLMS\r\n")  # 4: 4800 baud
    meter = await PtyMeter(front).start()

    def open_serial(params: SerialParams) -> int:
        fd = os.open(params.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(fd)
        return fd

    context = Context(open_serial=open_serial, events=lambda *a: None, clock=FakeClock(),
                      data_dir=tmp_path)
    assert PLUGIN.open_polled is not None
    opened = PLUGIN.open_polled(Bus(port=meter.gateway_path, options={"mode_e": True}),
                                context)
    try:
        got = await opened.read(Meter())
        assert any(s.quantity == "voltage_l1" for s in got) and front.sign_ons == 1
        assert meter.link.gateway_speed() == termios.B4800
    finally:
        await opened.close()
        await meter.stop()
