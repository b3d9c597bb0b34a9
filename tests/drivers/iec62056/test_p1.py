"""DSMR P1 telegrams pushed over a pty: good ones yielded, a bad CRC dropped and counted."""

from __future__ import annotations

import json
from decimal import Decimal

import serial

from drivers.iec62056.p1 import P1Port, telegram_end
from drivers.iec62056.sim import P1Sim
from tests.corpus import CORPUS

TELEGRAMS = [
    t["telegram"].encode("latin-1")
    for t in json.loads((CORPUS / "iec62056/dsmr_telegrams.json").read_text())
]


async def test_telegrams_are_parsed_and_a_bad_crc_is_dropped() -> None:
    damaged = TELEGRAMS[1].replace(b"002130.115", b"002130.116")
    pushed = [b"\x00garbage", TELEGRAMS[0], damaged, TELEGRAMS[2]]
    with P1Sim(pushed, interval_s=0.05) as sim:
        port = serial.Serial(sim.port_path, 115200, timeout=0)
        p1 = P1Port(port, "p1-test")
        received = []
        async for telegram in p1.telegrams():
            received.append(telegram)
            if len(received) == 2:
                break
        port.close()
    assert [t.readout.identification.model for t in received] == ["MT382-1000", "53769484_A"]
    first = {s.quantity: s.value for s in received[0].mapped.samples}
    assert first["import_active_energy_t1"] == Decimal("4.426")
    assert p1.counters == {"telegrams_ok": 2, "crc_errors": 1, "frame_errors": 0,
                           "dataset_errors": 0}


def test_telegram_end_waits_for_the_crc_line() -> None:
    telegram = TELEGRAMS[0]
    bang = telegram.index(b"!")
    assert telegram_end(telegram[: bang + 3]) is None
    assert telegram_end(b"noise" + telegram) == len(telegram) + 5
