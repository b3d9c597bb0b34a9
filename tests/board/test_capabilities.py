"""Board capabilities: the real board has a clock probe, a disk check, a settable clock, a modem
and an error ring; the simulated board answers None (its clock, disk and logs are the host's)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from board.interface import ClockNotSettable
from board.modem import ModemPolicy
from board.rpi import RpiBoard, build_rpi_board
from board.simulated import SimulatedBoard
from tests.board.fake_gpiod import FakeGpiod

CHIP = "/dev/gpiochip0"
WHEN = datetime(2030, 1, 1, tzinfo=UTC)


def rpi(tmp_path: Path, profile: str = "pi-generic-40pin") -> RpiBoard:
    return build_rpi_board(profile=profile, state_dir=tmp_path / "board",
                           gpiod=FakeGpiod(CHIP).api())


def test_the_simulated_board_has_none(tmp_path: Path) -> None:
    board = SimulatedBoard(tmp_path / "board")
    assert board.clock_probe() is None  # the host clock is trusted
    assert board.disk_check(tmp_path, tmp_path / "gw.db") is None
    assert board.modem(ModemPolicy()) is None
    assert board.error_ring_path(tmp_path) is None
    with pytest.raises(ClockNotSettable, match="simulated board") as refused:
        board.set_clock(WHEN)
    assert refused.value.why == "simulated" and refused.value.expected


def test_the_real_board_checks_the_disk_before_the_store_opens(tmp_path: Path) -> None:
    board = rpi(tmp_path)
    check = board.disk_check(tmp_path, tmp_path / "gw.db")
    assert check is not None and check.ok and check.free_bytes > 0
    assert check.database_bytes is None
    (tmp_path / "gw.db").write_bytes(b"not a database at all" * 10)
    again = board.disk_check(tmp_path, tmp_path / "gw.db")
    assert again is not None and not again.ok  # the header check names the bad file


def test_the_real_board_probes_its_clock_and_keeps_errors_on_disk(tmp_path: Path) -> None:
    board = rpi(tmp_path)
    probe = board.clock_probe()
    assert probe is not None and isinstance(probe(), bool)
    assert board.error_ring_path(tmp_path) == tmp_path / "errors.ring"


def test_the_real_board_supervises_its_modem(tmp_path: Path) -> None:
    with_line = rpi(tmp_path).modem(ModemPolicy(stuck_after_s=60))
    assert with_line is not None and with_line.supervisor.has_power_control
    without = rpi(tmp_path, "waveshare-rpi-relay-board").modem(ModemPolicy())
    assert without is not None and not without.supervisor.has_power_control


def test_setting_the_clock_without_the_capability_names_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_to: list[float] = []

    def refuse(clock: int, seconds: float) -> None:
        raise PermissionError(1, "Operation not permitted")

    board = rpi(tmp_path)
    monkeypatch.setattr(time, "clock_settime", lambda clock, seconds: set_to.append(seconds))
    board.set_clock(WHEN)
    assert set_to == [WHEN.timestamp()]
    monkeypatch.setattr(time, "clock_settime", refuse)
    with pytest.raises(ClockNotSettable, match="CAP_SYS_TIME") as refused:
        board.set_clock(WHEN)
    assert refused.value.why == "not root" and not refused.value.expected


def test_temperature_from_the_thermal_zone_and_none_on_the_simulated_board(
        tmp_path: Path) -> None:
    from board.thermal import read_millicelsius

    assert SimulatedBoard(tmp_path / "board").temperature_mc() is None
    zone = tmp_path / "temp"
    zone.write_text("48312\n")  # as /sys/class/thermal/thermal_zone0/temp reads on a Pi 4
    assert read_millicelsius(zone) == 48312
    zone.write_text("garbage")
    assert read_millicelsius(zone) is None
    assert read_millicelsius(tmp_path / "absent") is None
    reading = rpi(tmp_path).temperature_mc()  # this host's zone, where it has one
    assert reading is None or isinstance(reading, int)
