"""WmbusReceiver against the dongle simulators over real pseudo-terminals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
import serial

from drivers.mbus.records import RecordSpec
from drivers.wmbus import receiver as R
from drivers.wmbus.builder import build_frame, build_payload
from drivers.wmbus.keys import KeyStore
from drivers.wmbus.sim import DongleSimulator, Faults
from tests.harness.eventually import eventually_async

KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
WAIT_S = 15   # generous upper bound for a condition; tests never assert on durations
PAYLOAD = build_payload([RecordSpec(0xC, 0x13, 12345), RecordSpec(0x2, 0x5A, 215)])
KEYED = build_frame("KAM", "11111111", 0x1B, 0x07, PAYLOAD, access_number=1, key=KEY)
KEYED_AGAIN = build_frame("KAM", "11111111", 0x1B, 0x07, PAYLOAD, access_number=9, key=KEY)
KEYED_PLAIN = build_frame("KAM", "11111111", 0x1B, 0x07, PAYLOAD, access_number=2)
KEYED_PLAIN_AGAIN = build_frame("KAM", "11111111", 0x1B, 0x07, PAYLOAD, access_number=4)
STRANGER = build_frame("SEN", "99999999", 0x01, 0x07, PAYLOAD, access_number=3)


def keystore(tmp_path: Path, key: bytes = KEY) -> KeyStore:
    store = KeyStore(tmp_path / "keys")
    store.add("11111111", key.hex())
    return store


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator:
    made: list[tuple[DongleSimulator, R.WmbusReceiver]] = []

    async def _make(kind: str, telegrams: list[bytes], store: KeyStore,
                    faults: Faults | None = None) -> tuple[DongleSimulator, R.WmbusReceiver]:
        sim = DongleSimulator(kind, telegrams, tmp_path / f"{kind}.tty", interval_s=0.05,
                              faults=faults)
        sim.start()
        receiver = R.WmbusReceiver(lambda: serial.Serial(str(sim.path), 115200, timeout=0),
                                   kind, "C1+T1", store, {"11111111": R.MeterConfig("KAM")})
        made.append((sim, receiver))
        return sim, receiver

    yield _make
    for sim, receiver in made:
        await receiver.close()
        sim.stop()


async def first_telegram(receiver: R.WmbusReceiver) -> R.MeterTelegram:
    async with asyncio.timeout(WAIT_S):
        async for telegram in receiver.telegrams():
            return telegram
    raise AssertionError("no telegram")


async def until(condition, what: str) -> None:
    await eventually_async(condition, WAIT_S, what)


@pytest.mark.parametrize("kind", ["im871a", "amb8465", "lines"])
async def test_encrypted_telegram_decoded_and_stranger_listed(make, tmp_path, kind) -> None:
    _sim, receiver = await make(kind, [KEYED, STRANGER], keystore(tmp_path))
    telegram = await first_telegram(receiver)
    assert telegram.meter == "11111111"
    assert telegram.rssi_dbm is not None
    values = {s.quantity: s.value for s in telegram.samples}
    assert values == {"volume": Decimal("12.345"), "flow_temperature": Decimal("21.5")}
    await until(lambda: receiver.unknown_meters(), "stranger heard")
    heard = receiver.unknown_meters()[0]
    assert (heard.meter, heard.manufacturer, heard.device_type) == ("99999999", "SEN", 7)
    assert receiver.counters()["unknown"] >= 1


async def test_wrong_key_is_one_event_and_no_reading(make, tmp_path) -> None:
    _sim, receiver = await make("im871a", [KEYED, KEYED_AGAIN], keystore(tmp_path, bytes(16)))
    await receiver.start()
    await until(lambda: receiver.counters()["wrong_key"] >= 2, "wrong keys")
    event = receiver.events.get_nowait()
    assert (event.kind, event.meter) == ("wrong_key", "11111111")
    assert receiver.events.empty()
    assert receiver.counters()["telegrams"] == 0


async def test_plaintext_from_keyed_meter_is_refused(make, tmp_path) -> None:
    _sim, receiver = await make("amb8465", [KEYED_PLAIN, KEYED_PLAIN_AGAIN], keystore(tmp_path))
    await receiver.start()
    await until(lambda: receiver.counters()["plaintext_refused"] >= 2, "refusals")
    assert receiver.events.get_nowait().kind == "plaintext_from_keyed_meter"
    assert receiver.events.empty()
    assert receiver.counters()["telegrams"] == 0


async def test_duplicates_within_window_are_dropped(make, tmp_path) -> None:
    _sim, receiver = await make("im871a", [KEYED], keystore(tmp_path))
    await first_telegram(receiver)
    await until(lambda: receiver.counters()["duplicates"] >= 2, "duplicates")
    assert receiver.counters()["telegrams"] == 1


async def test_unplug_and_replug_reconnects(make, tmp_path) -> None:
    sim, receiver = await make("amb8465", [KEYED, STRANGER], keystore(tmp_path))
    await first_telegram(receiver)
    assert receiver.connected
    sim.unplug()
    await until(lambda: not receiver.connected, "the lost port noticed")
    sim.replug()
    await until(lambda: receiver.counters()["reconnects"] >= 1, "reconnect")
    before = receiver.counters()["frames"]
    await until(lambda: receiver.counters()["frames"] > before, "frames after replug")


async def test_silent_dongle_is_reset(make, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(R, "SILENCE_S", 0.3)
    sim, receiver = await make("im871a", [STRANGER], keystore(tmp_path))
    await receiver.start()
    sim.silent = True
    await until(lambda: sim.resets >= 1, "reset")
    assert receiver.counters()["resets"] >= 1
    before = receiver.counters()["frames"]
    await until(lambda: receiver.counters()["frames"] > before, "frames after reset")


async def test_garbling_dongle_is_reset(make, tmp_path) -> None:
    sim, receiver = await make("im871a", [STRANGER], keystore(tmp_path),
                               Faults(crc_error=1.0, garbage=0.5))
    sim.interval_s = 0.01
    await receiver.start()
    await until(lambda: receiver.counters()["resets"] >= 1, "garble reset")
    assert receiver.counters()["bad_frames"] > 0


async def test_value_out_of_range_counted_for_the_meter_and_the_rest_delivered(
        make, tmp_path) -> None:
    # 10^37 J (VIF 0x0F with ten x10^3 VIFEs) raised decimal.InvalidOperation in mapping.py
    payload = build_payload([RecordSpec(0xC, 0x13, 12345),
                             RecordSpec(0x1, 0x0F, 1, vifes=(0x7D,) * 10)])
    frame = build_frame("KAM", "11111111", 0x1B, 0x07, payload, access_number=5, key=KEY)
    _sim, receiver = await make("lines", [frame], keystore(tmp_path))
    telegram = await first_telegram(receiver)
    assert {s.quantity: s.value for s in telegram.samples} == {"volume": Decimal("12.345")}
    assert receiver.meter_counters("11111111")["value_errors"] >= 1
    assert receiver.meter_counters("99999999")["value_errors"] == 0
