"""Keeps every long-lived task running, and the watchdogs honest.

`Supervisor.spawn(name, factory, critical=...)` is the only way the service starts a long-lived
task. The factory returns a fresh coroutine each time: when it raises, the failure is logged once
(with the component), handed to `on_failure` (the service stores a `component_failed` event, so
it goes up in the next batch) and the component starts again after a pause that doubles from
RESTART_FIRST_S to RESTART_MAX_S; a component that ran RESTART_RESET_AFTER_S before failing
starts again from the first pause. A coroutine that returns has finished its work (the clock
synced, no voucher reader): it is not restarted. Cancelling (shutdown) is not a failure.

systemd's watchdog (sd_notify WATCHDOG=1) and the board's hardware watchdog are kicked only when
no critical component (what metering needs: bus pollers, push sources, the writer, the prepay
tick) is down between a failure and its restart, every bus scheduler has stepped recently (a hung
bus stalls its scheduler) and the writer has committed recently (a dead disk stalls it). Missing
kicks get the service restarted by systemd; the relays are not touched (they HOLD their state).
A push source waiting for its port (a USB dongle not plugged in yet) is up, not down: restarting
the process would not make the stick appear.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
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
# A failed component restarts after RESTART_FIRST_S, doubling per failure up to RESTART_MAX_S:
# a transient fault is over in a second, a crash loop neither spins the CPU nor floods the log.
RESTART_FIRST_S = 1.0
RESTART_MAX_S = 60.0
# A component that ran this long before failing was healthy: its next pause is the first again.
RESTART_RESET_AFTER_S = 300.0
# At shutdown, a component still running this long after its cancellation is cancelled again.
STOP_RECANCEL_S = 1.0

Factory = Callable[[], Coroutine[Any, Any, None]]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Failure:
    """One unexpected exception of a component, as the service records it."""

    component: str
    critical: bool
    error_type: str
    error: str
    failures: int  # of this component since start-up
    restart_in_s: float


@dataclass(slots=True)
class Component:
    name: str
    factory: Factory
    critical: bool
    task: asyncio.Task[None] | None = None
    down: bool = False  # between a failure and its restart
    finished: bool = False
    failures: int = 0
    last_error: str | None = None


class Supervisor:
    def __init__(self, board: Board, *, notifier: SystemdNotifier | None = None,
                 mono: Callable[[], float] = time.monotonic,
                 sleep: Sleep = asyncio.sleep,
                 on_failure: Callable[[Failure], None] | None = None) -> None:
        self.board = board
        self.notifier = notifier or SystemdNotifier.from_environment()
        self._mono = mono
        self._sleep = sleep
        self.on_failure = on_failure
        self.alive_checks: dict[str, Callable[[], float | None]] = {}  # name -> last beat
        self.components: dict[str, Component] = {}
        self.withheld = 0

    # -- components ------------------------------------------------------------------------
    def spawn(self, name: str, factory: Factory, *, critical: bool = True) -> Component:
        """Start `factory()` as a supervised task named `name` (unique), restarted on failure."""
        if name in self.components:
            raise ValueError(f"component {name!r} is already supervised")
        component = Component(name, factory, critical)
        component.task = asyncio.get_running_loop().create_task(self._keep(component),
                                                                name=name)
        self.components[name] = component
        return component

    async def _keep(self, component: Component) -> None:
        pause = RESTART_FIRST_S
        while True:
            started = self._mono()
            component.down = False
            try:
                await component.factory()
            except asyncio.CancelledError:
                if _cancelled_from_outside():
                    raise  # shutdown, not a failure
                exc: BaseException = asyncio.CancelledError("cancelled from inside")
            except Exception as error:  # the last line of defence: any bug is restarted
                exc = error
            else:
                component.finished = True
                LOGGER.info("component_finished", extra={"component": component.name})
                return
            if self._mono() - started >= RESTART_RESET_AFTER_S:
                pause = RESTART_FIRST_S
            self._failed(component, exc, pause)
            await self._sleep(pause)
            pause = min(pause * 2, RESTART_MAX_S)

    def _failed(self, component: Component, exc: BaseException, pause: float) -> None:
        component.down = True
        component.failures += 1
        component.last_error = f"{type(exc).__name__}: {exc}"
        failure = Failure(component.name, component.critical, type(exc).__name__, str(exc),
                          component.failures, pause)
        LOGGER.error("component_failed", exc_info=exc,
                     extra={"component": component.name, "critical": component.critical,
                            "error_type": failure.error_type, "error": failure.error,
                            "failures": failure.failures, "restart_in_s": pause})
        if self.on_failure is None:
            return
        try:
            self.on_failure(failure)
        except Exception as sink_error:  # a failing store must not stop the restarts
            LOGGER.error("component_failure_not_recorded",
                         extra={"component": component.name, "error": str(sink_error)})

    async def stop(self) -> None:
        """Cancel every component and wait for them (shutdown); one that swallowed its
        cancellation (a library catching CancelledError) is cancelled again."""
        pending = {c.task for c in self.components.values() if c.task is not None}
        while pending:
            for task in pending:
                task.cancel()
            _done, pending = await asyncio.wait(pending, timeout=STOP_RECANCEL_S)
            if pending:
                LOGGER.warning("component_ignored_cancel",
                               extra={"components": sorted(t.get_name() for t in pending)})

    # -- watchdogs -------------------------------------------------------------------------
    def stale(self) -> list[str]:
        """What keeps the watchdogs from being fed: late beats and critical components down."""
        now = self._mono()
        late = [name for name, last in self.alive_checks.items()
                if (beat := last()) is None or now - beat > STALE_S]
        down = [c.name for c in self.components.values() if c.critical and c.down]
        return sorted(late + down)

    def feed(self) -> bool:
        """Kick both watchdogs unless something is stale; False (and logged) when withheld."""
        stale = self.stale()
        if stale:
            self.withheld += 1
            LOGGER.error("watchdog_withheld", extra={"stale": stale})
            return False
        self.board.kick_watchdog()
        self.notifier.watchdog()
        return True

    async def run(self) -> None:
        interval = watchdog_interval_s() or DEFAULT_KICK_S
        self.notifier.ready("reading meters")
        while True:
            self.feed()
            await self._sleep(interval)

    def stopping(self) -> None:
        self.notifier.stopping()


def _cancelled_from_outside() -> bool:
    """True when this task itself was cancelled (shutdown), not a CancelledError that leaked
    out of something the component awaited (which would otherwise end it silently)."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


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
