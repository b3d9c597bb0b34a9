"""Real-hardware check of the Pi board backend: skipped unless a board is attached and enabled.

Enable on a bench Pi (relays disconnected from any load!) with:
    GATEWAY_HIL_BOARD=waveshare-rpi-relay-board \\
        .venv/bin/python -m pytest -q hil/test_board_hardware.py
Optional: GATEWAY_HIL_LOOPBACK="relay1:input1" when an output is wired back to an input, and
GATEWAY_HIL_SERIAL=<by-id name> for an RS-485 adapter. See hil/bench_hardware/README.md.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from pathlib import Path

import pytest

from board.gpio import GpioBoard
from board.interface import InputSpec, OutputSpec, SafeState, SerialSpec
from board.profile import load_profile
from board.watchdog import SystemdNotifier

PROFILE = os.environ.get("GATEWAY_HIL_BOARD", "")
LOOPBACK = os.environ.get("GATEWAY_HIL_LOOPBACK", "")
SERIAL = os.environ.get("GATEWAY_HIL_SERIAL", "")
EDGE_WAIT_S = 2.0  # a relay contact settles in ~10 ms; two seconds means the wire is missing

pytestmark = [
    pytest.mark.hardware,
    pytest.mark.skipif(not PROFILE, reason="GATEWAY_HIL_BOARD not set (no bench board)"),
    pytest.mark.skipif(importlib.util.find_spec("gpiod") is None, reason="gpiod not installed"),
]


@pytest.fixture
def board(tmp_path: Path):
    profile = load_profile(PROFILE)
    if not Path(profile.chip).exists():
        pytest.skip(f"{profile.chip} not present")
    gpio = GpioBoard(profile, {}, state_path=tmp_path / "outputs.json",
                     notifier=SystemdNotifier(None))
    yield gpio
    gpio.close()


def test_every_relay_switches_and_reads_back(board: GpioBoard) -> None:
    names = sorted(board.profile.outputs)
    board.declare([OutputSpec(n, initial=False, safe_state=SafeState.OPEN) for n in names], [])
    for name in names:
        board.set_output(name, True)
        assert board.output_state(name) is True
        board.set_output(name, False)
        assert board.output_state(name) is False


@pytest.mark.skipif(not LOOPBACK, reason="GATEWAY_HIL_LOOPBACK not set (no output-to-input wire)")
async def test_loopback_edge_reaches_input(board: GpioBoard) -> None:
    out, inp = LOOPBACK.split(":")
    board.declare([OutputSpec(out, initial=False, safe_state=SafeState.OPEN)], [InputSpec(inp)])
    start = board.read_input(inp)
    stream = board.input_changes()
    board.set_output(out, True)
    change = await asyncio.wait_for(anext(stream), EDGE_WAIT_S)
    assert change.name == inp and change.active is not start


@pytest.mark.skipif(not SERIAL, reason="GATEWAY_HIL_SERIAL not set (no RS-485 adapter)")
def test_rs485_adapter_opens_by_id(board: GpioBoard) -> None:
    port = board.open_serial(SerialSpec(SERIAL, baudrate=9600, parity="E",
                                        rs485={"enabled": True, "mode": "rts"}), 0.5)
    try:
        assert port.is_open
    finally:
        port.close()
