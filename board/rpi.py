"""Composition helpers for the real board: what `gateway/` calls when `[board] kind = "rpi"`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from board.gpio import GpioBoard, GpiodApi
from board.modem import ModemManagerCli, ModemPolicy, ModemSupervisor, ModemWatch
from board.profile import load_profile
from board.watchdog import HardwareWatchdog, SystemdNotifier

OUTPUT_STATE_FILE = "outputs.json"
HARDWARE_WATCHDOG_TIMEOUT_S = 15  # matches RuntimeWatchdogSec in board/system: same margin


def build_rpi_board(*, profile: str, state_dir: str | Path,
                    bindings: Mapping[str, str] | None = None,
                    hardware_watchdog: str = "",
                    gpiod: GpiodApi | None = None) -> GpioBoard:
    """A GpioBoard for a profile name or path; BoardError names whatever is wrong.

    `hardware_watchdog` is a device path ("/dev/watchdog") only for systems where systemd's
    RuntimeWatchdogSec is off; empty leaves the hardware watchdog to systemd.
    """
    dog = None
    if hardware_watchdog:
        dog = HardwareWatchdog(Path(hardware_watchdog), timeout_s=HARDWARE_WATCHDOG_TIMEOUT_S)
    return GpioBoard(load_profile(profile), bindings or {},
                     state_path=Path(state_dir) / OUTPUT_STATE_FILE, gpiod=gpiod,
                     notifier=SystemdNotifier.from_environment(), hardware_watchdog=dog)


def build_modem_watch(board: GpioBoard, policy: ModemPolicy | None = None,
                      mmcli: str = "mmcli") -> ModemWatch:
    """Modem supervision using the board's modem power line when its profile has one."""
    has_power = board.profile.modem_power is not None
    supervisor = ModemSupervisor(policy or ModemPolicy(), has_power_control=has_power)
    return ModemWatch(ModemManagerCli(mmcli), supervisor,
                      power_cycle=board.power_cycle_modem if has_power else None)
