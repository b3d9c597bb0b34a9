"""DSMR P1 over the in-memory stream: a public telegram split at every point is read whole."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from drivers.iec62056.p1 import P1Port
from drivers.transport.memory import MemoryStream, split_every_way
from tests.corpus import CORPUS

TELEGRAM = json.loads((CORPUS / "iec62056/dsmr_telegrams.json").read_text())[0][
    "telegram"].encode("latin-1")


@pytest.mark.parametrize("chunks", split_every_way(TELEGRAM), ids=lambda c: str(len(c[0])))
async def test_telegram_whole_at_every_split(chunks: list[bytes]) -> None:
    stream = MemoryStream(protocol="dsmr")
    stream.feed(b"\x00noise", *chunks)
    p1 = P1Port(stream, "p1-test")
    telegrams = p1.telegrams()
    telegram = await anext(telegrams)
    await telegrams.aclose()
    first = {s.quantity: s.value for s in telegram.mapped.samples}
    assert first["import_active_energy_t1"] == Decimal("4.426")
    assert p1.counters["telegrams_ok"] == 1
    assert not stream.connected  # the telegram stream closed its line when the loop ended
