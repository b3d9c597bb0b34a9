"""Programming mode over a pty: P0 prompt, P1 password, R1/R5 reads of OBIS codes, B0 break."""

from __future__ import annotations

from decimal import Decimal

import pytest

from drivers.errors import DeviceRejected
from drivers.iec62056.reader import Iec62056Bus
from drivers.iec62056.sim import MeterSim

from .conftest import e650, port_factory

TIMEOUT_S = 20.0
REGISTERS = ["1.8.0", "32.7.0", "0.9.1", "0.9.2", "99.99.9"]


def e650_sim(password: str) -> MeterSim:
    return MeterSim([e650(password=password)])


@pytest.mark.parametrize("command", ["R1", "R5"])
async def test_password_then_register_reads(command: str) -> None:
    with e650_sim(password="00000000") as sim:
        bus = Iec62056Bus(port_factory(sim.port_path))
        options = {"password": "00000000", "obis": REGISTERS, "read_command": command}
        result = await bus.read("e650", "", options, TIMEOUT_S)
        await bus.close()
    got = {s.quantity: s.value for s in result.samples}
    assert got["import_active_energy"] == Decimal("1005")
    assert got["voltage_l1"] == Decimal("2.6")
    assert got["meter_datetime"] == "2022-12-28T11:03:17"
    assert result.register_errors == {"99.99.9": "(ERROR)"}
    assert result.baud == 4800


async def test_wrong_password_is_rejected_and_counted() -> None:
    with e650_sim(password="secret") as sim:
        bus = Iec62056Bus(port_factory(sim.port_path))
        with pytest.raises(DeviceRejected, match="password refused"):
            await bus.read("e650", "", {"password": "wrong", "obis": ["1.8.0"]}, TIMEOUT_S)
        # the B0 break returned the meter to idle: a readout right after works
        result = await bus.read("e650", "", {}, TIMEOUT_S)
        await bus.close()
    assert bus.counters("e650") == {"rejected": 1, "reads_ok": 1}
    assert result.samples

