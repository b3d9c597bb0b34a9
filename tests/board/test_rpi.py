"""Composition of the real board from config values, modem power cycling through its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from board.gpio import MODEM_POWER
from board.interface import BoardError, OutputSpec
from board.rpi import build_modem_watch, build_rpi_board
from tests.board.fake_gpiod import FakeGpiod

CHIP = "/dev/gpiochip0"


def test_build_from_config_values(tmp_path: Path) -> None:
    fake = FakeGpiod(CHIP)
    board = build_rpi_board(profile="waveshare-rpi-relay-board", state_dir=tmp_path,
                            bindings={"shop-12": "relay3"}, gpiod=fake.api())
    board.declare([OutputSpec("shop-12", initial=False)], [])
    board.set_output("shop-12", True)
    assert fake.chips[CHIP].levels[21] == 0
    assert (tmp_path / "outputs.json").exists()
    assert build_modem_watch(board).supervisor.has_power_control is False


def test_bad_profile_and_watchdog_are_board_errors(tmp_path: Path) -> None:
    with pytest.raises(BoardError, match="not found"):
        build_rpi_board(profile="nope", state_dir=tmp_path, gpiod=FakeGpiod(CHIP).api())
    with pytest.raises(BoardError, match="watchdog"):
        build_rpi_board(profile="pi-generic-40pin", state_dir=tmp_path,
                        hardware_watchdog=str(tmp_path / "no-watchdog"),
                        gpiod=FakeGpiod(CHIP).api())


async def test_modem_power_cycle_uses_profile_line(tmp_path: Path) -> None:
    fake = FakeGpiod(CHIP)
    profile = tmp_path / "short-off.json"
    text = (Path(__file__).resolve().parents[2] / "board/profiles/pi-generic-40pin.json")
    profile.write_text(text.read_text().replace('"off_s": 5', '"off_s": 1'))
    board = build_rpi_board(profile=str(profile), state_dir=tmp_path, gpiod=fake.api())
    board.declare([], [])
    chip = fake.chips[CHIP]
    assert chip.levels[23] == 1 and board.output_state(MODEM_POWER) is True
    watch = build_modem_watch(board)
    assert watch.supervisor.has_power_control
    await board.power_cycle_modem()
    assert chip.history[-2:] == [(23, 0), (23, 1)]
    assert not (tmp_path / "outputs.json").exists()  # the modem line is not persisted
