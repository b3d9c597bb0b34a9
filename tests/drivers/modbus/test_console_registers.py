"""The Modbus console command `registers`: its words parsed strictly, raw words read from the
simulator over a real pty, one row per register."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import DeviceTimeout
from drivers.modbus.console import DEFAULT_COUNT, REGISTERS, format_rows, parse_words
from drivers.modbus.master import ModbusBus, SerialBusSpec
from drivers.modbus.plan import ReadRequest
from drivers.modbus.plugin import PLUGIN
from drivers.modbus.sim import Misbehaviour, SimulatedBus, SlaveSpec
from tests.drivers.modbus.opener import board_opener

VOLTAGE_L1 = 23296  # abb_b23: uint32, high word first, 0.1 V


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[tuple[SimulatedBus, SimpleNamespace]]:
    async with SimulatedBus([SlaveSpec(5, "abb_b23")], link_name=tmp_path / "ttySIM0") as sim:
        bus = ModbusBus(SerialBusSpec(sim.gateway_path), open_fd=board_opener(sim.gateway_path))
        yield sim, SimpleNamespace(driver=bus)  # the plugin's opened bus holds `driver`
        await bus.close()


async def test_registers_shows_the_raw_words_the_meter_sent(opened) -> None:
    sim, bus = opened
    sim.force_words(5, "voltage_l1", [[0x0000, 0x08FC]])  # 230.0 V
    lines = await REGISTERS.run(bus, ["5", str(VOLTAGE_L1), "2"])
    assert lines[0] == f"2 holding registers from {VOLTAGE_L1} (FC3)"
    first, second = lines[2].split(), lines[3].split()
    assert first[:4] == [str(VOLTAGE_L1), "0x0000", "0", "0"]
    assert second == [str(VOLTAGE_L1 + 1), "0x08FC", "2300", "2300"]  # no next word: no float
    assert sim.records[-1]["slave"] == 5


async def test_a_silent_slave_is_a_timeout_naming_it(opened) -> None:
    sim, bus = opened
    sim.set_misbehaviour(5, Misbehaviour.SILENCE)
    with pytest.raises(DeviceTimeout, match="slave 5"):
        await REGISTERS.run(bus, ["5", "0", "1"])


def test_the_plugin_brings_the_command() -> None:
    assert REGISTERS in PLUGIN.console_commands
    assert REGISTERS.role == "technician" and not REGISTERS.changes


@pytest.mark.parametrize(("words", "message"), [
    ([], "give a slave id"),
    (["5"], "give a slave id"),
    (["0", "10"], "slave id 0 is not in 1..247"),
    (["5", "x"], "start register 'x' is not a number"),
    (["5", "10", "126"], "count 126 is not in 1..125"),
    (["5", "65535", "2"], "runs past register 65535"),
    (["5", "input"], "before holding or input"),
    (["5", "1", "2", "3", "4"], "give a slave id"),
])
def test_wrong_words_are_refused_naming_the_word(words: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_words(words)


@given(st.integers(1, 247), st.integers(0, 0xFFFF), st.integers(1, 125),
       st.sampled_from(["holding", "input", None]))
def test_every_valid_request_parses_to_what_was_typed(slave: int, start: int, count: int,
                                                      table: str | None) -> None:
    words = [str(slave), hex(start), str(count)] + ([table] if table else [])
    if start + count > 0x10000:
        with pytest.raises(ValueError):
            parse_words(words)
        return
    assert parse_words(words) == (slave, ReadRequest(4 if table == "input" else 3, start, count))


def test_the_count_defaults_to_ten() -> None:
    assert parse_words(["5", "100"]) == (5, ReadRequest(3, 100, DEFAULT_COUNT))


@given(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=125))
def test_each_row_shows_its_word_signed_and_as_a_float_with_the_next(words: list[int]) -> None:
    lines = format_rows(ReadRequest(4, 10, len(words)), words)
    assert len(lines) == 2 + len(words)
    for index, word in enumerate(words):
        row = lines[2 + index].split()
        assert int(row[0]) == 10 + index and int(row[1], 16) == word and int(row[2]) == word
        assert int(row[3]) == struct.unpack(">h", struct.pack(">H", word))[0]
        assert len(row) == (5 if index + 1 < len(words) else 4)
