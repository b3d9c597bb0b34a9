"""Keeps the watchdogs honest: they are fed only while the service really works.

systemd's watchdog (sd_notify WATCHDOG=1) and the board's hardware watchdog are kicked only when
every bus scheduler has stepped recently (a hung bus stalls its scheduler), the writer has
committed recently (a dead disk stalls it) and the uplink task is still running (a network that
is down for weeks is normal, a crashed uplink task is not). Missing kicks get the service
restarted by systemd; the relays are not touched (they HOLD their state).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from board.interface import Board
from board.watchdog import SystemdNotifier, watchdog_interval_s

LOGGER = logging.getLogger(__name__)

# Without systemd's watchdog, the board watchdog is still fed this often.
DEFAULT_KICK_S = 5.0
# A component silent for this long is stale: far above a scheduler step (1 s) or a commit (1 s).
STALE_S = 60.0
# Checking the clock sync (adjtimex / timedatectl) is a syscall or a process: not per reading.
CLOCK_CHECK_S = 10.0


class Supervisor:
    def __init__(self, board: Board, *, notifier: SystemdNotifier | None = None,
                 mono: Callable[[], float] = time.monotonic) -> None:
        self.board = board
        self.notifier = notifier or SystemdNotifier.from_environment()
        self._mono = mono
        self.alive_checks: dict[str, Callable[[], float | None]] = {}  # name -> last beat
        self.tasks: dict[str, asyncio.Task[Any]] = {}  # must stay running
        self.withheld = 0

    def stale(self) -> list[str]:
        now = self._mono()
        late = [name for name, last in self.alive_checks.items()
                if (beat := last()) is None or now - beat > STALE_S]
        dead = [name for name, task in self.tasks.items() if task.done()]
        return sorted(late + dead)

    async def run(self) -> None:
        interval = watchdog_interval_s() or DEFAULT_KICK_S
        self.notifier.ready("reading meters")
        while True:
            stale = self.stale()
            if stale:
                self.withheld += 1
                LOGGER.error("watchdog_withheld", extra={"stale": stale})
            else:
                self.board.kick_watchdog()
                self.notifier.watchdog()
            await asyncio.sleep(interval)

    def stopping(self) -> None:
        self.notifier.stopping()


class ClockState:
    """Whether the wall clock is synchronised yet; readings taken before are flagged."""

    def __init__(self, probe: Callable[[], bool] | None) -> None:
        self._probe = probe
        self.synced = probe is None  # no probe (simulated board): the host clock is trusted

    def __call__(self) -> bool:
        return self.synced

    async def run(self) -> None:
        while self._probe is not None and not self.synced:
            self.synced = self._probe()
            if not self.synced:
                await asyncio.sleep(CLOCK_CHECK_S)
