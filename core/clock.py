"""The one clock shape every component is given: wall milliseconds, monotonic seconds, sleep.

Wall time (`wall_ms`, integer Unix milliseconds) stamps readings, events and ledger entries; it
can jump when NTP or the RTC sets it. Monotonic time (`monotonic`, float seconds) measures
timeouts, backoffs and intervals; it never jumps. `sleep` waits in monotonic time. A component
takes a `Clock` and never calls `time` or `asyncio.sleep` itself, so a test steps a `FakeClock`
instead of sleeping (docs/architecture.md, "Time").
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Final, Protocol, runtime_checkable

# FakeClock starts on a fixed, recognisable wall time (2026-01-01T00:00:00Z) unless told.
FAKE_EPOCH_MS: Final = 1_767_225_600_000


@runtime_checkable
class Clock(Protocol):
    """Wall time in integer ms, monotonic time in float seconds, and a sleep in monotonic time."""

    def wall_ms(self) -> int:
        """Unix time in milliseconds; may jump (NTP, RTC, a technician's `set_time`)."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes back."""

    async def sleep(self, seconds: float) -> None:
        """Return after `seconds` of monotonic time (at once for 0 or less)."""


class SystemClock:
    """The real clock: `time.time_ns`, `time.monotonic` and `asyncio.sleep`."""

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


SYSTEM_CLOCK: Final = SystemClock()


class FakeClock:
    """A clock that moves only when a test steps it; `sleep` returns once stepped past its end.

    `step(s)` advances both times by `s` and wakes every sleeper whose end time is reached, in
    end-time order (ties in the order they went to sleep). `set_wall_ms` jumps the wall time
    alone, as NTP would. Sleepers are woken through their futures, so after `step` a test lets
    them run with `await asyncio.sleep(0)` (or `await clock.settle()`).
    """

    def __init__(self, wall_ms: int = FAKE_EPOCH_MS, monotonic: float = 0.0) -> None:
        self._wall_base_ms = wall_ms
        self._stepped = 0.0  # seconds stepped since the wall was last set, rounded once on read
        self._mono = monotonic
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def wall_ms(self) -> int:
        return self._wall_base_ms + round(self._stepped * 1000)

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)  # still a point where other tasks run, like asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._order), future))
        await future

    @property
    def sleepers(self) -> int:
        """How many sleeps are waiting (cancelled ones no longer count)."""
        return sum(1 for *_, f in self._sleepers if not f.done())

    def next_wake(self) -> float | None:
        """The monotonic time the next sleeper wakes at, or None when nobody sleeps."""
        self._drop_cancelled()
        return self._sleepers[0][0] if self._sleepers else None

    def step(self, seconds: float) -> None:
        """Advance wall and monotonic time by `seconds` (>= 0) and wake the sleepers due."""
        if seconds < 0:
            raise ValueError("a clock does not step backwards; use set_wall_ms for a wall jump")
        self._mono += seconds
        self._stepped += seconds
        while self._sleepers and self._sleepers[0][0] <= self._mono:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def set_wall_ms(self, wall_ms: int) -> None:
        """Jump the wall clock (forwards or back); monotonic time and sleepers are untouched."""
        self._wall_base_ms = wall_ms
        self._stepped = 0.0

    async def settle(self) -> None:
        """Let woken sleepers (and what they start) run: a few event-loop turns."""
        for _ in range(5):
            await asyncio.sleep(0)

    async def run_for(self, seconds: float) -> None:
        """Step through `seconds` wake by wake, letting each woken task run before the next."""
        end = self._mono + seconds
        await self.settle()
        while (wake := self.next_wake()) is not None and wake <= end:
            self.step(max(0.0, wake - self._mono))
            await self.settle()
        self.step(max(0.0, end - self._mono))
        await self.settle()

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)


__all__ = ["FAKE_EPOCH_MS", "SYSTEM_CLOCK", "Clock", "FakeClock", "SystemClock"]
