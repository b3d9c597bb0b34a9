"""'Not available' registers (NaN, infinity, FLT_MAX) and values out of range, over the simulator.

A meter that writes the FLT_MAX filler into one register must keep its other values, the bus
must keep reading its neighbours, and the event comes once per meter when a quantity goes
missing, not on every poll.
"""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from drivers.modbus.master import NOT_AVAILABLE_EVENT, ModbusBus, SerialBusSpec
from drivers.modbus.profiles import get_profile
from drivers.modbus.sim import SimulatedBus, SlaveSpec
from tests.drivers.modbus.opener import board_opener

TIMEOUT_S = 2.0  # healthy reads: generous so a loaded CI box never flakes
FLT_MAX = [[0x7F7F, 0xFFFF]]
MINUS_FLT_MAX = [[0xFF7F, 0xFFFF]]
HUGE_FLOAT = [[0x7F00, 0x0000]]  # 1.7E+38: a real float32, but no meter value is that big
SDM, EM = 1, 2


class Events:
    """Collects what the bus reports through its event hook (the service stores these)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None, dict[str, Any], str]] = []

    def __call__(self, kind: str, meter: str | None, data: dict[str, Any], severity: str) -> None:
        self.seen.append((kind, meter, data, severity))


def as_strings(samples) -> dict[str, str]:
    return {s.quantity: str(s.value) for s in samples}


@pytest.fixture
async def line(tmp_path: Path) -> AsyncIterator[tuple[SimulatedBus, ModbusBus, Events]]:
    slaves = [SlaveSpec(SDM, "eastron_sdm630", seed=5), SlaveSpec(EM, "gavazzi_em340", seed=5)]
    async with SimulatedBus(slaves, link_name=tmp_path / "ttySIM0") as sim:
        events = Events()
        bus = ModbusBus(SerialBusSpec(sim.gateway_path), open_fd=board_opener(sim.gateway_path),
                        on_event=events)
        yield sim, bus, events
        await bus.close()


async def read_both(sim: SimulatedBus, bus: ModbusBus) -> dict[str, str]:
    sdm = await bus.read_meter("sdm", SDM, get_profile("eastron_sdm630"), timeout_s=TIMEOUT_S)
    em = await bus.read_meter("em", EM, get_profile("gavazzi_em340"), timeout_s=TIMEOUT_S)
    assert as_strings(em) == sim.served(EM)  # the neighbour on the same line is still read
    return as_strings(sdm)


@pytest.mark.parametrize("filler", [FLT_MAX, MINUS_FLT_MAX], ids=["flt_max", "minus_flt_max"])
async def test_flt_max_register_is_not_available_and_the_rest_is_stored(line, filler) -> None:
    sim, bus, events = line
    sim.force_words(SDM, "voltage_l2", filler)
    for _ in range(3):  # polled again and again: one event, not one per poll
        values = await read_both(sim, bus)
        assert "voltage_l2" not in values
        assert values == sim.served(SDM)
        assert set(values) == set(get_profile("eastron_sdm630").quantities) - {"voltage_l2"}
    raw = f"{filler[0][0]:04x}{filler[0][1]:04x}"
    assert events.seen == [(NOT_AVAILABLE_EVENT, "sdm", {"quantities": {
        "voltage_l2": {"reason": "not_available", "raw": raw}}}, "info")]
    assert bus.counters("sdm")["values_absent"] == 3
    assert bus.counters("sdm")["reads_ok"] == 3


async def test_event_again_only_after_the_quantity_was_available(line) -> None:
    sim, bus, events = line
    sim.force_words(SDM, "frequency", FLT_MAX)
    await read_both(sim, bus)
    await read_both(sim, bus)
    sim.force_words(SDM, "frequency", None)
    assert "frequency" in await read_both(sim, bus)
    sim.force_words(SDM, "frequency", FLT_MAX)
    await read_both(sim, bus)
    assert [e[0] for e in events.seen] == [NOT_AVAILABLE_EVENT] * 2
    assert bus.counters("sdm")["values_absent"] == 3


async def test_value_out_of_range_is_left_out_counted_and_reported(line) -> None:
    sim, bus, events = line
    sim.force_words(SDM, "current_l1", HUGE_FLOAT)
    sim.force_words(SDM, "voltage_l3", FLT_MAX)
    values = await read_both(sim, bus)
    assert values == sim.served(SDM)
    assert "current_l1" not in values and "voltage_l3" not in values
    ((kind, meter, data, severity),) = events.seen  # one event for the meter, both quantities
    assert (kind, meter, severity) == (NOT_AVAILABLE_EVENT, "sdm", "warning")
    assert data["quantities"]["current_l1"]["reason"] == "out_of_range"
    assert data["quantities"]["current_l1"]["raw"] == "7f000000"
    assert data["quantities"]["voltage_l3"]["reason"] == "not_available"
    assert bus.counters("sdm")["values_out_of_range"] == 1
    assert bus.counters("em")["values_out_of_range"] == 0
