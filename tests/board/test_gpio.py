"""GpioBoard against a fake chip at the gpiod v2 boundary: polarity, restart safety, inputs."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from board.gpio import CONSUMER, GpioBoard, load_gpiod, usb_mount_points
from board.interface import BoardError, InputSpec, OutputSpec, SafeState
from board.profile import BoardProfile, LinePin, SysfsLed, load_profile
from board.watchdog import SystemdNotifier
from tests.board.fake_gpiod import Bias, Edge, FakeGpiod

CHIP = "/dev/gpiochip0"
SHOP = "relay-shop-12"


def make_board(fake: FakeGpiod, tmp_path: Path, profile: str = "waveshare-rpi-relay-board",
               bindings: dict[str, str] | None = None) -> GpioBoard:
    return GpioBoard(load_profile(profile), bindings or {SHOP: "relay1", "pump": "relay2"},
                     state_path=tmp_path / "outputs.json", gpiod=fake.api(),
                     notifier=SystemdNotifier(None))


def test_relay_polarity_and_persisted_state(tmp_path: Path) -> None:
    fake = FakeGpiod(CHIP)
    board = make_board(fake, tmp_path)
    board.declare([OutputSpec(SHOP, initial=False)], [])
    chip = fake.chips[CHIP]
    assert chip.levels[26] == 1  # active-low coil: high = released
    board.set_output(SHOP, True)
    assert chip.levels[26] == 0
    assert board.output_state(SHOP) is True
    assert json.loads((tmp_path / "outputs.json").read_text()) == {SHOP: True}
    assert fake.consumers == [CONSUMER]


def test_unknown_state_keeps_physical_level_without_glitch(tmp_path: Path) -> None:
    fake = FakeGpiod(CHIP)
    chip = fake.chips[CHIP]
    chip.levels[26] = 0  # relay energised by the previous run, no state file survived
    board = make_board(fake, tmp_path)
    board.declare([OutputSpec(SHOP)], [])
    assert board.output_state(SHOP) is True
    assert chip.history == []  # the pin never moved


def test_restart_restores_persisted_state(tmp_path: Path) -> None:
    fake = FakeGpiod(CHIP)
    board = make_board(fake, tmp_path)
    board.declare([OutputSpec(SHOP, initial=False)], [])
    board.set_output(SHOP, True)
    board.close()
    fake.chips[CHIP].levels[26] = 1  # power cut: pin fell back to its pull-up, coil released
    again = make_board(fake, tmp_path)
    again.declare([OutputSpec(SHOP)], [])
    assert again.output_state(SHOP) is True
    assert fake.chips[CHIP].levels[26] == 0


def test_close_applies_safe_states_and_releases(tmp_path: Path) -> None:
    fake = FakeGpiod(CHIP)
    board = make_board(fake, tmp_path)
    board.declare([OutputSpec(SHOP, initial=True, safe_state=SafeState.HOLD),
                   OutputSpec("pump", initial=True, safe_state=SafeState.OPEN)], [])
    board.close()
    chip = fake.chips[CHIP]
    assert chip.levels[26] == 0  # held closed
    assert chip.levels[20] == 1  # opened
    assert chip.request is None


def test_inputs_settings_and_reads(tmp_path: Path) -> None:
    fake = FakeGpiod(CHIP)
    board = make_board(fake, tmp_path, "pi-generic-40pin", {"gen-running": "input1"})
    fake.chips[CHIP].levels[16] = 1  # pulled up, opto off
    board.declare([], [InputSpec("gen-running", debounce_ms=35)])
    settings_16 = fake.chips[CHIP].request.settings[16]  # type: ignore[union-attr]
    assert settings_16.debounce_period == timedelta(milliseconds=35)
    assert settings_16.bias is Bias.PULL_UP
    assert settings_16.edge_detection is Edge.BOTH
    assert board.read_input("gen-running") is False
    fake.chips[CHIP].levels[16] = 0
    assert board.read_input("gen-running") is True


def test_config_active_low_inverts_profile_polarity(tmp_path: Path) -> None:
    fake = FakeGpiod(CHIP)
    board = make_board(fake, tmp_path, "pi-generic-40pin", {"door-nc": "input1"})
    fake.chips[CHIP].levels[16] = 1
    board.declare([], [InputSpec("door-nc", active_low=True)])
    assert board.read_input("door-nc") is True


async def test_input_changes_stream(tmp_path: Path) -> None:
    fake = FakeGpiod(CHIP)
    board = make_board(fake, tmp_path, "pi-generic-40pin", {"gen": "input1", "grid": "input2"})
    fake.chips[CHIP].levels.update({16: 1, 12: 1})
    board.declare([], [InputSpec("gen"), InputSpec("grid")])
    stream = board.input_changes()
    chip = fake.chips[CHIP]
    chip.drive_input(16, 0)
    first = await asyncio.wait_for(anext(stream), 5)
    chip.drive_input(12, 0)
    second = await asyncio.wait_for(anext(stream), 5)
    assert (first.name, first.active) == ("gen", True)
    assert (second.name, second.active) == ("grid", True)
    await stream.aclose()  # type: ignore[attr-defined]
    board.close()


def test_gpio_leds_and_sysfs_leds(tmp_path: Path) -> None:
    led_dir = tmp_path / "ACT"
    led_dir.mkdir()
    profile = BoardProfile("t", CHIP, {}, {}, {"status": SysfsLed(str(led_dir)),
                                              "fault": LinePin(CHIP, 22, kind="led")})
    fake = FakeGpiod(CHIP)
    board = GpioBoard(profile, {}, state_path=tmp_path / "o.json", gpiod=fake.api(),
                      notifier=SystemdNotifier(None))
    board.declare([OutputSpec("status", kind="led", initial=False),
                   OutputSpec("fault", kind="led", initial=False)], [])
    assert (led_dir / "trigger").read_text() == "none"
    board.set_output("status", True)
    board.set_output("fault", True)
    assert (led_dir / "brightness").read_text() == "1"
    assert fake.chips[CHIP].levels[22] == 1
    assert not (tmp_path / "o.json").exists()  # LEDs never wear the card


@pytest.mark.parametrize(
    ("outputs", "inputs", "bindings", "message"),
    [
        ([OutputSpec("x")], [], {"x": "relay9"}, "relay9"),
        ([OutputSpec("a", initial=True), OutputSpec("b", initial=True)], [],
         {"a": "relay1", "b": "relay1"}, "already used"),
        ([OutputSpec("uplink", kind="led")], [], {}, "no such LED"),
        ([], [InputSpec("x")], {"x": "input1"}, "input1"),
    ],
)
def test_declare_errors_name_the_thing(tmp_path: Path, outputs: list[OutputSpec],
                                       inputs: list[InputSpec], bindings: dict[str, str],
                                       message: str) -> None:
    board = make_board(FakeGpiod(CHIP), tmp_path, bindings=bindings)
    with pytest.raises(BoardError, match=message):
        board.declare(outputs, inputs)


def test_busy_chip_and_undeclared_names(tmp_path: Path) -> None:
    fake = FakeGpiod(CHIP)
    fake.request_lines(CHIP, consumer="someone-else", config={})
    board = make_board(fake, tmp_path)
    with pytest.raises(BoardError, match="gpioinfo"):
        board.declare([OutputSpec(SHOP, initial=False)], [])
    idle = make_board(FakeGpiod(CHIP), tmp_path)
    with pytest.raises(BoardError, match="not declared"):
        idle.set_output("nobody", True)
    with pytest.raises(BoardError, match="not declared"):
        idle.read_input("nobody")


@pytest.mark.skipif(importlib.util.find_spec("gpiod") is not None, reason="gpiod is installed")
def test_missing_gpiod_is_a_clear_error() -> None:
    with pytest.raises(BoardError, match=r"meter-gateway\[pi\]"):
        load_gpiod()


@settings(max_examples=40, deadline=None)
@given(commands=st.lists(st.tuples(st.sampled_from([SHOP, "pump"]), st.booleans()), max_size=12))
def test_pins_follow_commands_and_survive_restart(tmp_path_factory: pytest.TempPathFactory,
                                                  commands: list[tuple[str, bool]]) -> None:
    tmp_path = tmp_path_factory.mktemp("prop")
    fake = FakeGpiod(CHIP)
    board = make_board(fake, tmp_path)
    board.declare([OutputSpec(SHOP, initial=False), OutputSpec("pump", initial=False)], [])
    expected = {SHOP: False, "pump": False}
    for name, on in commands:
        board.set_output(name, on)
        expected[name] = on
    board.close()
    again = make_board(fake, tmp_path)
    again.declare([OutputSpec(SHOP), OutputSpec("pump")], [])
    chip = fake.chips[CHIP]
    for name, line in ((SHOP, 26), ("pump", 20)):
        assert again.output_state(name) is expected[name]
        assert chip.levels[line] == int(not expected[name])  # active-low


def test_usb_mount_points_from_proc_mounts() -> None:
    mounts = (
        "/dev/mmcblk0p2 / ext4 rw,noatime 0 0\n"
        "systemd-1 /media/gateway-usb-sda1 autofs rw 0 0\n"
        "/dev/sda1 /media/gateway-usb-sda1 vfat rw,nosuid,nodev,noexec 0 0\n"
        "/dev/sdb1 /media/gateway-usb-sdb1\\040x vfat rw 0 0\n"
        "/dev/sdc1 /mnt/other vfat rw 0 0\n"
    )
    assert usb_mount_points(mounts) == ["/media/gateway-usb-sda1", "/media/gateway-usb-sdb1 x"]
