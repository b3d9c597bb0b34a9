"""The poll scheduler: wall-clock alignment, one read at a time, clock jumps survived."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.app.scheduler import BusScheduler, PollPlan, next_boundary


class FakeTime:
    """A wall clock and a monotonic clock that advance together unless the wall clock jumps."""

    def __init__(self, wall: float) -> None:
        self.wall_now = wall
        self.mono_now = 1000.0

    def wall(self) -> float:
        return self.wall_now

    def mono(self) -> float:
        return self.mono_now

    async def sleep(self, seconds: float) -> None:
        self.wall_now += seconds
        self.mono_now += seconds

    def jump(self, seconds: float) -> None:
        self.wall_now += seconds


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False), st.sampled_from([1, 15, 60, 900]))
def test_next_boundary_is_the_first_multiple_after_now(now: float, interval: int) -> None:
    slot = next_boundary(now, interval)
    assert slot > now
    assert slot % interval == 0
    assert slot - interval <= now


def make(clock: FakeTime, plans: list[PollPlan], reads: list[tuple[str, float]],
         jumps: list[float] | None = None) -> BusScheduler:
    async def read(meter_id: str, slot: float) -> None:
        reads.append((meter_id, clock.wall()))
        clock.mono_now += 0.05  # a read takes time on the wire
        clock.wall_now += 0.05

    return BusScheduler("bus", plans, read, wall=clock.wall, mono=clock.mono, sleep=clock.sleep,
                        on_clock_jump=(jumps.append if jumps is not None else None))


async def run_until(sched: BusScheduler, clock: FakeTime, until: float) -> None:
    while clock.wall() < until:
        await sched.step()


async def test_fifteen_minute_meter_is_read_on_quarter_hours() -> None:
    start = 1_700_000_123.0
    clock = FakeTime(start)
    reads: list[tuple[str, float]] = []
    sched = make(clock, [PollPlan("m1", 900)], reads)
    await run_until(sched, clock, start + 3600)
    times = [t for _, t in reads]
    assert times[0] == start  # once at start-up
    assert all(int(t) % 900 == 0 for t in times[1:])
    assert len(times) == 5


async def test_meters_on_a_bus_are_read_one_after_the_other() -> None:
    clock = FakeTime(1_700_000_000.0)
    reads: list[tuple[str, float]] = []
    sched = make(clock, [PollPlan("a", 60), PollPlan("b", 60), PollPlan("c", 30)], reads)
    await run_until(sched, clock, 1_700_000_000.0 + 120)
    counts = {m: sum(1 for r, _ in reads if r == m) for m in "abc"}
    assert counts == {"a": 3, "b": 3, "c": 5}
    stamps = [t for _, t in reads]
    assert stamps == sorted(stamps)


async def test_clock_jump_forward_and_back_keeps_polling_without_double_slots() -> None:
    clock = FakeTime(1_700_000_000.0)
    reads: list[tuple[str, float]] = []
    jumps: list[float] = []
    sched = make(clock, [PollPlan("m", 60)], reads, jumps)
    await run_until(sched, clock, 1_700_000_000.0 + 130)
    before = len(reads)
    clock.jump(+7200)  # NTP sync after a boot without RTC
    await run_until(sched, clock, clock.wall() + 130)
    clock.jump(-3600)
    await run_until(sched, clock, clock.wall() + 130)
    assert len(jumps) == 2 and jumps[0] > 7000 and jumps[1] < -3000
    after = [t for _, t in reads[before:]]
    assert len(after) >= 4  # still polling after both jumps
    assert all(int(t) % 60 == 0 for t in after)
    assert len(set(after)) == len(after)
