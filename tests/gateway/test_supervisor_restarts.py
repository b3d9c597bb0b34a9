"""Supervised components: restarted with capped backoff, one event per failure, and the
watchdogs withheld while a critical one is down."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from board.simulated import SimulatedBoard
from board.watchdog import SystemdNotifier
from gateway.app import supervision as S
from gateway.app.supervision import Failure, Supervisor
from tests.harness.eventually import eventually_async

WAIT_S = 15  # upper bound for a condition to become true; never a duration asserted on


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Pauses:
    """An injected sleep: records each restart pause and waits until the test releases it."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await self.release.wait()


class Flaky:
    """A component that fails `failures` times, then runs (blocked on `stop`)."""

    def __init__(self, failures: int, clock: Clock | None = None, ran_s: float = 0.0) -> None:
        self.left = failures
        self.starts = 0
        self.running = asyncio.Event()
        self.stop = asyncio.Event()
        self._clock, self._ran_s = clock, ran_s

    async def __call__(self) -> None:
        self.starts += 1
        if self.left > 0:
            self.left -= 1
            if self._clock is not None:
                self._clock.now += self._ran_s
            raise RuntimeError(f"bug {self.left}")
        self.running.set()
        await self.stop.wait()


def supervisor(tmp_path: Path, pauses: Pauses, clock: Clock | None = None
               ) -> tuple[Supervisor, list[Failure]]:
    failures: list[Failure] = []
    sup = Supervisor(SimulatedBoard(tmp_path / "board"), notifier=SystemdNotifier(None),
                     mono=clock or Clock(), sleep=pauses, on_failure=failures.append)
    return sup, failures


async def test_a_failing_component_restarts_with_doubling_capped_backoff(tmp_path: Path) -> None:
    pauses = Pauses()
    sup, failures = supervisor(tmp_path, pauses)
    flaky = Flaky(8)
    sup.spawn("poll-rs485-1", flaky)
    async with asyncio.timeout(WAIT_S):
        await flaky.running.wait()
    assert flaky.starts == 9
    assert pauses.asked == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert pauses.asked[-1] == S.RESTART_MAX_S
    assert [f.failures for f in failures] == list(range(1, 9))  # one record per failure
    first = failures[0]
    assert (first.component, first.critical, first.error_type, first.error,
            first.restart_in_s) == ("poll-rs485-1", True, "RuntimeError", "bug 7", 1.0)
    await sup.stop()


async def test_backoff_starts_again_after_a_period_of_health(tmp_path: Path) -> None:
    clock = Clock()
    pauses = Pauses()
    sup, _failures = supervisor(tmp_path, pauses, clock)
    # each run lasts long enough to count as healthy before it fails
    flaky = Flaky(3, clock, ran_s=S.RESTART_RESET_AFTER_S)
    sup.spawn("writer", flaky)
    async with asyncio.timeout(WAIT_S):
        await flaky.running.wait()
    assert pauses.asked == [S.RESTART_FIRST_S] * 3
    await sup.stop()


async def test_the_watchdog_is_withheld_while_a_critical_component_is_down(
        tmp_path: Path) -> None:
    pauses = Pauses()
    pauses.release.clear()  # hold the component in its restart pause
    sup, _failures = supervisor(tmp_path, pauses)
    board = sup.board
    assert isinstance(board, SimulatedBoard)
    flaky = Flaky(1)
    sup.spawn("push-radio", flaky)
    await eventually_async(lambda: pauses.asked, WAIT_S, "the restart pause")
    assert sup.stale() == ["push-radio"]
    assert sup.feed() is False and board.watchdog_kicks == 0
    pauses.release.set()
    async with asyncio.timeout(WAIT_S):
        await flaky.running.wait()
    assert sup.stale() == []
    assert sup.feed() is True and board.watchdog_kicks == 1  # fed again once it recovered
    await sup.stop()


async def test_a_non_critical_component_down_still_feeds_the_watchdog(tmp_path: Path) -> None:
    pauses = Pauses()
    pauses.release.clear()
    sup, failures = supervisor(tmp_path, pauses)
    sup.spawn("console-socket", Flaky(1), critical=False)
    await eventually_async(lambda: pauses.asked, WAIT_S, "the restart pause")
    assert failures[0].critical is False
    assert sup.stale() == [] and sup.feed() is True
    await sup.stop()


async def test_cancelling_on_shutdown_is_not_a_failure(tmp_path: Path) -> None:
    sup, failures = supervisor(tmp_path, Pauses())
    flaky = Flaky(0)
    component = sup.spawn("uplink", flaky, critical=False)
    async with asyncio.timeout(WAIT_S):
        await flaky.running.wait()
    await sup.stop()
    assert failures == [] and component.failures == 0 and flaky.starts == 1
    assert component.task is not None and component.task.cancelled()


async def test_a_cancelled_error_leaking_from_inside_is_a_failure(tmp_path: Path) -> None:
    sup, failures = supervisor(tmp_path, Pauses())
    calls = 0
    running = asyncio.Event()

    async def leaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise asyncio.CancelledError  # e.g. a future cancelled by a library, not by us
        running.set()
        await asyncio.Event().wait()

    sup.spawn("push-p1", leaky)
    async with asyncio.timeout(WAIT_S):
        await running.wait()
    assert [f.error_type for f in failures] == ["CancelledError"]
    await sup.stop()


async def test_a_finished_component_is_neither_restarted_nor_down(tmp_path: Path) -> None:
    sup, failures = supervisor(tmp_path, Pauses())

    async def synced() -> None:
        return

    component = sup.spawn("clock", synced)
    assert component.task is not None
    await component.task
    assert component.finished and not component.down and failures == []
    assert sup.stale() == []


async def test_a_failing_failure_sink_is_logged_and_restarts_go_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pauses = Pauses()
    sup, _failures = supervisor(tmp_path, pauses)

    def broken_store(failure: Failure) -> None:
        raise OSError("disk gone")

    sup.on_failure = broken_store
    flaky = Flaky(2)
    sup.spawn("writer", flaky)
    async with asyncio.timeout(WAIT_S):
        await flaky.running.wait()
    assert flaky.starts == 3
    logged = [r.getMessage() for r in caplog.records]
    assert logged.count("component_failed") == 2  # logged once per failure, not more
    assert logged.count("component_failure_not_recorded") == 2
    await sup.stop()


async def test_a_component_name_is_supervised_once(tmp_path: Path) -> None:
    sup, _failures = supervisor(tmp_path, Pauses())
    sup.spawn("writer", Flaky(0))
    with pytest.raises(ValueError, match="already supervised"):
        sup.spawn("writer", Flaky(0))
    await sup.stop()


async def test_stop_cancels_again_a_component_that_swallowed_its_cancellation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(S, "STOP_RECANCEL_S", 0.01)
    sup, failures = supervisor(tmp_path, Pauses())
    running = asyncio.Event()

    async def stubborn() -> None:
        running.set()
        with contextlib.suppress(asyncio.CancelledError):  # a library that goes on regardless
            await asyncio.Event().wait()
        await asyncio.Event().wait()

    component = sup.spawn("poll-rs485-1", stubborn)
    async with asyncio.timeout(WAIT_S):
        await running.wait()
        await sup.stop()
    assert component.task is not None and component.task.cancelled()
    assert failures == []
