"""The one clock shape: the system clock satisfies it, the fake one moves only when stepped."""

from __future__ import annotations

import asyncio

import pytest

from core.clock import FAKE_EPOCH_MS, SYSTEM_CLOCK, Clock, FakeClock


def test_both_clocks_have_the_one_shape() -> None:
    assert isinstance(SYSTEM_CLOCK, Clock)
    assert isinstance(FakeClock(), Clock)
    assert isinstance(SYSTEM_CLOCK.wall_ms(), int)
    first = SYSTEM_CLOCK.monotonic()
    assert SYSTEM_CLOCK.monotonic() >= first


async def test_system_sleep_of_zero_or_less_returns() -> None:
    await SYSTEM_CLOCK.sleep(0)
    await SYSTEM_CLOCK.sleep(-1)


def test_fake_time_moves_only_when_stepped() -> None:
    clock = FakeClock()
    assert (clock.wall_ms(), clock.monotonic()) == (FAKE_EPOCH_MS, 0.0)
    clock.step(1.5)
    assert (clock.wall_ms(), clock.monotonic()) == (FAKE_EPOCH_MS + 1500, 1.5)
    for _ in range(10):
        clock.step(0.1)  # float steps do not drift the wall milliseconds
    assert clock.wall_ms() == FAKE_EPOCH_MS + 2500
    with pytest.raises(ValueError):
        clock.step(-1)


def test_a_wall_jump_leaves_monotonic_time_alone() -> None:
    clock = FakeClock(wall_ms=1000, monotonic=5.0)
    clock.step(1)
    clock.set_wall_ms(0)
    assert (clock.wall_ms(), clock.monotonic()) == (0, 6.0)
    clock.step(0.25)
    assert clock.wall_ms() == 250


async def test_sleep_waits_until_stepped_past_its_end() -> None:
    clock = FakeClock()
    sleeper = asyncio.create_task(clock.sleep(10))
    await clock.settle()
    assert clock.sleepers == 1 and clock.next_wake() == 10.0
    clock.step(9.999)
    await clock.settle()
    assert not sleeper.done()
    clock.step(0.001)
    await clock.settle()
    assert sleeper.done() and clock.sleepers == 0 and clock.next_wake() is None


async def test_sleepers_wake_in_end_time_order() -> None:
    clock = FakeClock()
    woken: list[str] = []

    async def nap(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woken.append(name)

    tasks = [asyncio.create_task(nap(n, s)) for n, s in (("c", 3), ("a", 1), ("b", 2), ("b2", 2))]
    await clock.settle()
    clock.step(5)
    await asyncio.gather(*tasks)
    assert woken == ["a", "b", "b2", "c"]


async def test_a_cancelled_sleeper_is_forgotten() -> None:
    clock = FakeClock()
    sleeper = asyncio.create_task(clock.sleep(1))
    await clock.settle()
    sleeper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeper
    assert clock.sleepers == 0 and clock.next_wake() is None
    clock.step(2)  # nothing to wake, nothing raised


async def test_sleep_of_zero_does_not_wait_for_a_step() -> None:
    clock = FakeClock()
    await asyncio.wait_for(clock.sleep(0), timeout=1)
    await asyncio.wait_for(clock.sleep(-3), timeout=1)


async def test_run_for_drives_a_periodic_task_without_real_waiting() -> None:
    clock = FakeClock()
    ticks: list[float] = []

    async def every_second() -> None:
        while True:
            await clock.sleep(1)
            ticks.append(clock.monotonic())

    task = asyncio.create_task(every_second())
    await clock.run_for(10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ticks == [float(n) for n in range(1, 11)]
    assert clock.wall_ms() == FAKE_EPOCH_MS + 10_000
