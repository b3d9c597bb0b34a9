"""How a WmbusReceiver starts: a missing port raises (the CLI) or is waited for (the service),
and a closed receiver starts again (a supervised source that is restarted)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import serial

from drivers.errors import PortUnavailable
from drivers.mbus.records import RecordSpec
from drivers.wmbus import receiver as R
from drivers.wmbus.builder import build_frame, build_payload
from drivers.wmbus.keys import KeyStore
from drivers.wmbus.sim import DongleSimulator

KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
WAIT_S = 15  # upper bound for a condition to become true; never a duration asserted on
FRAMES = [build_frame("KAM", "11111111", 0x1B, 0x07, build_payload([RecordSpec(0xC, 0x13, n)]),
                      access_number=n, key=KEY) for n in range(1, 40)]


def receiver(tmp_path: Path, path: Path) -> R.WmbusReceiver:
    keys = KeyStore(tmp_path / "keys")
    keys.add("11111111", KEY.hex())
    return R.WmbusReceiver(lambda: serial.Serial(str(path), 115200, timeout=0), "im871a", "T1",
                           keys, {"11111111": R.MeterConfig("KAM")})


async def first(rx: R.WmbusReceiver, **kwargs: Any) -> R.MeterTelegram:
    async with asyncio.timeout(WAIT_S):
        async for telegram in rx.telegrams(**kwargs):
            return telegram
    raise AssertionError("no telegram")


async def test_a_missing_port_raises_without_wait_for_port(tmp_path: Path) -> None:
    rx = receiver(tmp_path, tmp_path / "absent.tty")
    with pytest.raises(PortUnavailable):
        await rx.start()
    assert rx.events.empty()
    await rx.close()


async def test_a_port_appearing_later_is_opened_and_reported_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(R, "RECONNECT_FIRST_S", 0.01)
    monkeypatch.setattr(R, "RECONNECT_MAX_S", 0.04)
    path = tmp_path / "im.tty"
    rx = receiver(tmp_path, path)
    await rx.start(wait_for_port=True)  # returns: the supervisor keeps trying
    event = rx.events.get_nowait()
    assert event.kind == "port_unavailable" and str(path) in event.detail
    sim = DongleSimulator("im871a", FRAMES, path, interval_s=0.05)
    sim.start()
    try:
        telegram = await first(rx)
    finally:
        await rx.close()
        sim.stop()
    assert telegram.meter == "11111111"
    kinds = []
    while not rx.events.empty():
        kinds.append(rx.events.get_nowait().kind)
    assert kinds == ["dongle_reconnected"]  # no second port_unavailable for the retries
    assert sim.link_mode == 0x03


async def test_a_closed_receiver_starts_again(tmp_path: Path) -> None:
    path = tmp_path / "im.tty"
    sim = DongleSimulator("im871a", FRAMES, path, interval_s=0.05)
    sim.start()
    rx = receiver(tmp_path, path)
    try:
        await first(rx)
        await rx.close()
        before = rx.counters()["telegrams"]
        await first(rx)  # a restarted source iterates again on the same receiver
        assert rx.counters()["telegrams"] > before
    finally:
        await rx.close()
        sim.stop()
