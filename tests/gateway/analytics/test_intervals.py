"""Interval energy: exact sums over any partition, across DST changes, gaps and clock jumps."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.analytics.grid import Grid
from gateway.analytics.intervals import Interval, RegisterTrack

BERLIN = "Europe/Berlin"
# 2026-03-29 02:00 CET -> 03:00 CEST, 2026-10-25 03:00 CEST -> 02:00 CET
SPRING_MS = int(dt.datetime(2026, 3, 28, 12, tzinfo=ZoneInfo(BERLIN)).timestamp()) * 1000
AUTUMN_MS = int(dt.datetime(2026, 10, 24, 12, tzinfo=ZoneInfo(BERLIN)).timestamp()) * 1000
HOUR_MS = 3_600_000


def track(grid: str, zone: str = BERLIN, max_interpolate_ms: int = 30 * 86_400_000
          ) -> RegisterTrack:
    return RegisterTrack("m1", "import_active_energy", Grid(grid, zone), 300_000,
                         max_interpolate_ms)


def run(t: RegisterTrack, readings: list[tuple[int, Decimal]]) -> list[Interval]:
    out: list[Interval] = []
    for ts, value in readings:
        out.extend(t.add(ts, value))
    return out


def total(intervals: list[Interval]) -> Decimal:
    return sum(((i.value or Decimal(0)) + (i.carried or Decimal(0)) for i in intervals),
               Decimal(0))


steps = st.lists(st.tuples(
    st.one_of(st.integers(1, 40 * 60_000), st.integers(1, 30 * HOUR_MS),
              st.integers(-2 * HOUR_MS, 0)),  # a clock jump back
    st.integers(0, 50_000).map(lambda n: Decimal(n).scaleb(-3)),
), min_size=1, max_size=60)


def readings_from(start_ms: int, grid: Grid, walk: list[tuple[int, Decimal]]
                  ) -> list[tuple[int, Decimal]]:
    """A reading on a boundary, the walk, and a last reading on a boundary after them all."""
    ts = grid.next_after(start_ms)
    value = Decimal("1234.567")
    out = [(ts, value)]
    newest = ts
    for dt_ms, delta in walk:
        ts, value = ts + dt_ms, value + delta
        newest = max(newest, ts)
        out.append((ts, value))
    out.append((grid.next_after(newest), value + Decimal("0.001")))
    return out


@settings(max_examples=150, deadline=None)
@given(walk=steps, start=st.sampled_from([SPRING_MS, AUTUMN_MS]),
       grid=st.sampled_from(["15min", "hourly", "daily"]))
def test_intervals_sum_exactly_to_the_register_difference(
        walk: list[tuple[int, Decimal]], start: int, grid: str) -> None:
    t = track(grid)
    readings = readings_from(start, t.grid, walk)
    intervals = run(t, readings)
    assert intervals
    assert total(intervals) == readings[-1][1] - readings[0][1]
    assert all(a.end_ms == b.start_ms for a, b in itertools.pairwise(intervals))


@settings(max_examples=100, deadline=None)
@given(walk=steps, start=st.sampled_from([SPRING_MS, AUTUMN_MS]))
def test_quarter_hours_sum_to_the_hour_and_hours_to_the_day(
        walk: list[tuple[int, Decimal]], start: int) -> None:
    readings = readings_from(start, Grid("daily", BERLIN), walk)
    by_grid = {g: run(track(g), readings) for g in ("15min", "hourly", "daily")}
    for coarse, fine in (("hourly", "15min"), ("daily", "hourly")):
        for big in by_grid[coarse]:
            parts = [i for i in by_grid[fine] if big.start_ms <= i.start_ms < big.end_ms]
            assert total(parts) == big.value


@settings(max_examples=100, deadline=None)
@given(walk=steps)
def test_long_gaps_are_missing_and_carry_their_energy(walk: list[tuple[int, Decimal]]) -> None:
    t = track("15min", max_interpolate_ms=2 * HOUR_MS)
    readings = readings_from(SPRING_MS, t.grid, walk)
    intervals = run(t, readings)
    assert total(intervals) == readings[-1][1] - readings[0][1]
    for i in intervals:
        assert (i.value is None) == (i.quality == "missing")


def test_a_day_has_23_or_25_hours_at_the_dst_changes() -> None:
    for day, hours in ((dt.date(2026, 3, 29), 23), (dt.date(2026, 10, 25), 25)):
        midnight = int(dt.datetime(day.year, day.month, day.day,
                                   tzinfo=ZoneInfo(BERLIN)).timestamp()) * 1000
        grid = Grid("hourly", BERLIN)
        daily = Grid("daily", BERLIN)
        assert len(grid.between(midnight, daily.next_after(midnight))) == hours


def test_hourly_grid_follows_a_half_hour_zone() -> None:
    grid = Grid("hourly", "Asia/Kolkata")
    b = grid.next_after(SPRING_MS)
    assert dt.datetime.fromtimestamp(b / 1000, ZoneInfo("Asia/Kolkata")).minute == 0
    assert (b // 60_000) % 60 == 30


def test_quality_measured_interpolated_and_gap_length() -> None:
    t = track("15min")
    b0 = t.grid.next_after(SPRING_MS)
    minute = 60_000
    readings = [(b0, Decimal("10")), (b0 + 5 * minute, Decimal("10.5")),
                (b0 + 10 * minute, Decimal("10.7")),
                (b0 + 15 * minute, Decimal("11")),  # polled every 5 min: measured
                (b0 + 75 * minute, Decimal("14"))]  # one hour without readings
    out = run(t, readings)
    assert [(i.quality, i.value, i.gap_ms) for i in out] == [
        ("measured", Decimal("1.000000"), 0),
        ("interpolated", Decimal("0.750000"), 60 * minute),
        ("interpolated", Decimal("0.750000"), 60 * minute),
        ("interpolated", Decimal("0.750000"), 60 * minute),
        ("interpolated", Decimal("0.750000"), 60 * minute),
    ]


def test_a_clock_jump_back_lands_in_the_next_interval() -> None:
    t = track("15min")
    b0 = t.grid.next_after(SPRING_MS)
    out = run(t, [(b0, Decimal("1")), (b0 + 600_000, Decimal("2")),
                  (b0 + 60_000, Decimal("3")),  # the clock went back 9 minutes
                  (b0 + 900_000, Decimal("4"))])
    assert [(i.value, i.clock_jump) for i in out] == [(Decimal("3.000000"), True)]
