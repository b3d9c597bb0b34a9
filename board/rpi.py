"""The real board as the service uses it: what `gateway/` builds when `[board] kind = "rpi"`.

`RpiBoard` is the GPIO board with the capabilities of a Raspberry Pi gateway: a clock that is
wrong until NTP syncs (no RTC), an SD card worth checking before the store opens, a settable
system clock, a 4G modem to supervise, and a journal in RAM (recent errors kept on disk).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from board.clock import ClockSync
from board.disk import StartupCheck, startup_check
from board.gpio import GpioBoard, GpiodApi
from board.interface import ClockNotSettable
from board.modem import ModemManagerCli, ModemPolicy, ModemSupervisor, ModemWatch
from board.profile import load_profile
from board.thermal import read_millicelsius
from board.watchdog import HardwareWatchdog, SystemdNotifier

OUTPUT_STATE_FILE = "outputs.json"
ERROR_RING_FILE = "errors.ring"
HARDWARE_WATCHDOG_TIMEOUT_S = 15  # matches RuntimeWatchdogSec in board/system: same margin


class RpiBoard(GpioBoard):
    """GpioBoard plus the capabilities of a Raspberry Pi gateway (see board.interface)."""

    def clock_probe(self) -> Callable[[], bool] | None:
        return ClockSync().is_synced

    def disk_check(self, data_dir: Path, database: Path) -> StartupCheck | None:
        return startup_check(data_dir, database)

    def set_clock(self, when: datetime) -> None:
        try:
            time.clock_settime(time.CLOCK_REALTIME, when.timestamp())
        except PermissionError:
            raise ClockNotSettable("not root", "the service may not set the clock (needs root or "
                                   "CAP_SYS_TIME); use 'timedatectl set-time' as root") from None

    def modem(self, policy: ModemPolicy) -> ModemWatch | None:
        return build_modem_watch(self, policy)

    def error_ring_path(self, data_dir: Path) -> Path | None:
        return data_dir / ERROR_RING_FILE  # the journal is volatile: a reboot erases why

    def temperature_mc(self) -> int | None:
        return read_millicelsius()


def build_rpi_board(*, profile: str, state_dir: str | Path,
                    bindings: Mapping[str, str] | None = None,
                    hardware_watchdog: str = "",
                    gpiod: GpiodApi | None = None) -> RpiBoard:
    """An RpiBoard for a profile name or path; BoardError names whatever is wrong.

    `hardware_watchdog` is a device path ("/dev/watchdog") only for systems where systemd's
    RuntimeWatchdogSec is off; empty leaves the hardware watchdog to systemd.
    """
    dog = None
    if hardware_watchdog:
        dog = HardwareWatchdog(Path(hardware_watchdog), timeout_s=HARDWARE_WATCHDOG_TIMEOUT_S)
    return RpiBoard(load_profile(profile), bindings or {},
                    state_path=Path(state_dir) / OUTPUT_STATE_FILE, gpiod=gpiod,
                    notifier=SystemdNotifier.from_environment(), hardware_watchdog=dog)


def build_modem_watch(board: GpioBoard, policy: ModemPolicy | None = None,
                      mmcli: str = "mmcli") -> ModemWatch:
    """Modem supervision using the board's modem power line when its profile has one."""
    has_power = board.profile.modem_power is not None
    supervisor = ModemSupervisor(policy or ModemPolicy(), has_power_control=has_power)
    return ModemWatch(ModemManagerCli(mmcli), supervisor,
                      power_cycle=board.power_cycle_modem if has_power else None)
