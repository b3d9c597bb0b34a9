"""The simulated board keeps relay states across restarts and reports input changes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from board.interface import BoardError, InputSpec, OutputSpec, SerialSpec
from board.simulated import SimulatedBoard


def test_relay_state_survives_a_restart(tmp_path: Path) -> None:
    board = SimulatedBoard(tmp_path)
    board.declare([OutputSpec("relay-1", initial=True)], [])
    assert board.output_state("relay-1") is True
    board.set_output("relay-1", False)
    board.close()
    again = SimulatedBoard(tmp_path)
    # a declared initial state never overrides the persisted one: no blind switching at boot
    again.declare([OutputSpec("relay-1", initial=True)], [])
    assert again.output_state("relay-1") is False


def test_undeclared_names_are_refused(tmp_path: Path) -> None:
    board = SimulatedBoard(tmp_path)
    with pytest.raises(BoardError, match="relay-9"):
        board.set_output("relay-9", True)
    with pytest.raises(BoardError, match="gen"):
        board.read_input("gen")


def test_corrupt_state_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "outputs.json").write_text("{not json")
    with pytest.raises(BoardError, match=r"outputs\.json"):
        SimulatedBoard(tmp_path)


async def test_input_changes_are_streamed_with_active_low(tmp_path: Path) -> None:
    board = SimulatedBoard(tmp_path)
    board.declare([], [InputSpec("button"), InputSpec("cover", active_low=True)])
    assert board.read_input("cover") is True  # active low: an open (low) line reads active
    board.set_input("button", False)  # the file exists: the next write comes within one tick
    changes = board.input_changes()
    first = asyncio.ensure_future(changes.__anext__())
    await asyncio.sleep(0)  # one loop turn: the iterator runs to its first wait, levels taken
    board.set_input("button", True)
    change = await asyncio.wait_for(first, 5)
    assert (change.name, change.active) == ("button", True)
    await changes.aclose()


def test_serial_port_on_a_pty_and_a_vanished_port(tmp_path: Path) -> None:
    board = SimulatedBoard(tmp_path)
    master, slave = os.openpty()
    try:
        link = tmp_path / "ttyS-sim"
        link.symlink_to(os.ttyname(slave))
        port = board.open_serial(SerialSpec(str(link), baudrate=9600, parity="E"), timeout_s=0.1)
        assert port.parity == "E" and port.baudrate == 9600
        port.write(b"\x01\x03")
        assert os.read(master, 2) == b"\x01\x03"
        port.close()
    finally:
        os.close(master)
        os.close(slave)
    with pytest.raises(BoardError, match="does not exist"):
        board.open_serial(SerialSpec(str(tmp_path / "ttyUSB7")))
