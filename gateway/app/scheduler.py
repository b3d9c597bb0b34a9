"""Polls the meters of one bus, one after the other, aligned to wall-clock boundaries.

A 15-minute meter is read at :00, :15, :30 and :45 (boundaries of Unix time, so every gateway of
a site reads at the same instants), once more at start-up so a technician sees it work at once.
The wall clock can jump (no RTC at boot, then NTP sync; a technician's `time set`): the loop
sleeps in short steps on the monotonic clock and re-plans every meter from the new wall time,
so a jump never stops polling, and never makes it read the same slot twice in a row.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

LOGGER = logging.getLogger(__name__)

# The longest single sleep: bounds how late a clock jump is noticed.
MAX_SLEEP_S = 1.0
# Wall-vs-monotonic drift above this between two checks is a clock jump, not scheduling jitter.
CLOCK_JUMP_TOLERANCE_S = 2.0

ReadFn = Callable[[str, float], Awaitable[None]]
JumpFn = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class PollPlan:
    meter_id: str
    interval_s: int


def next_boundary(now: float, interval_s: int) -> float:
    """The first multiple of `interval_s` (in Unix seconds) strictly after `now`."""
    return (math.floor(now / interval_s) + 1) * interval_s


class BusScheduler:
    """Runs forever (until cancelled), calling `read(meter_id, slot_time)` when each is due."""

    def __init__(self, bus_id: str, plans: Sequence[PollPlan], read: ReadFn, *,
                 on_clock_jump: JumpFn | None = None,
                 wall: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.bus_id = bus_id
        self._plans = {p.meter_id: p for p in plans}
        self._read = read
        self._on_jump = on_clock_jump
        self._wall, self._mono, self._sleep = wall, mono, sleep
        now = wall()
        self._due = {p.meter_id: now for p in plans}  # everyone once at start-up
        self._offset = now - mono()
        self.last_step_mono: float | None = None  # the watchdog's proof this bus is not hung

    def due_times(self) -> dict[str, float]:
        return dict(self._due)

    async def run(self) -> None:
        while True:
            await self.step()

    async def step(self) -> None:
        """One pass: read every meter that is due, or sleep until the next one is."""
        self.last_step_mono = self._mono()
        now = self._check_clock()
        ready = sorted((t, m) for m, t in self._due.items() if t <= now)
        if not ready:
            earliest = min(self._due.values(), default=now + MAX_SLEEP_S)
            await self._sleep(min(max(earliest - now, 0.0), MAX_SLEEP_S))
            return
        for slot, meter_id in ready:
            await self._read(meter_id, slot)
            self.last_step_mono = self._mono()
            # a read that overran the next boundary skips it rather than queueing a backlog
            after = max(self._check_clock(), slot)
            self._due[meter_id] = next_boundary(after, self._plans[meter_id].interval_s)

    def _check_clock(self) -> float:
        now = self._wall()
        offset = now - self._mono()
        jump = offset - self._offset
        self._offset = offset
        if abs(jump) > CLOCK_JUMP_TOLERANCE_S:
            LOGGER.warning("clock_jump", extra={"bus": self.bus_id, "jump_s": round(jump, 3)})
            for meter_id, plan in self._plans.items():
                self._due[meter_id] = next_boundary(now, plan.interval_s)
            if self._on_jump is not None:
                self._on_jump(jump)
        return now
