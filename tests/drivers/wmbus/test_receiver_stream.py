"""The wM-Bus receiver over the in-memory stream: the dongle's golden frames split at every
point reach the framer whole, and the link-mode setup goes out as the dongle expects it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from drivers.transport.memory import MemoryStream, split_every_way
from drivers.wmbus import receiver as R
from drivers.wmbus.keys import KeyStore

WAIT_S = 5  # bounds a failing test only
METER = "11111111"
# KAM meter 11111111, version 0x1B, water (7), access number 1, one record: volume 1234 (CI 0x7A).
GOLDEN = {
    "im871a": {
        "setup": bytes.fromhex("a5810304000203002b05"),  # SetConfig: RAM only, link mode T1
        "setup_reply": bytes.fromhex("a581040100b7b2"),
        "telegram": bytes.fromhex("a5c20314442d2c111111111b077a010000000c133412000060b219"),
    },
    "amb8465": {
        "setup": bytes.fromhex("ff040108f2"),  # SetMode T1
        "setup_reply": bytes.fromhex("ff8401007a"),
        "telegram": bytes.fromhex("ff0315442d2c111111111b077a010000000c13341200006092"),
    },
}


async def _received(tmp_path: Path, dongle: str, chunks: list[bytes]) -> R.MeterTelegram:
    golden = GOLDEN[dongle]
    stream = MemoryStream(protocol="wmbus")
    stream.reply_after_write([golden["setup_reply"]])
    receiver = R.WmbusReceiver(lambda: stream, dongle, "T1", KeyStore(tmp_path / "keys"),
                               {METER: R.MeterConfig("KAM", 7)})
    try:
        await receiver.start()
        assert stream.writes == [golden["setup"]]
        stream.feed(*chunks)
        async with asyncio.timeout(WAIT_S):
            async for telegram in receiver.telegrams():
                return telegram
    finally:
        await receiver.close()
    raise AssertionError("no telegram")


@pytest.mark.parametrize("dongle", sorted(GOLDEN))
@pytest.mark.parametrize("split", range(len(split_every_way(GOLDEN["amb8465"]["telegram"]))))
async def test_golden_dongle_frame_at_every_split(tmp_path: Path, dongle: str,
                                                  split: int) -> None:
    chunkings = split_every_way(GOLDEN[dongle]["telegram"])
    telegram = await _received(tmp_path, dongle, chunkings[split % len(chunkings)])
    assert telegram.meter == METER and telegram.manufacturer == "KAM"
    assert [str(s.value) for s in telegram.samples] == ["1.234"]


async def test_garbage_and_a_bad_frame_before_the_telegram_are_skipped(tmp_path: Path) -> None:
    good = GOLDEN["im871a"]["telegram"]
    bad = good[:-1] + bytes([good[-1] ^ 0xFF])
    telegram = await _received(tmp_path, "im871a", [b"\x00\x13\x37", bad, good])
    assert telegram.meter == METER
