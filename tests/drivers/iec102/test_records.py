"""A 102 meter's own records through the reader, against the simulated meter: the load profile
and billing closures as dated samples, exact, each handed on once (the gateway's marks as
gateway/app/meter_records.py keeps them, across a restart), a gap caught up over several polls;
events once across a restart; the meter's clock set within limits."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from drivers.iec102.objects import Event, Total, Totals
from drivers.iec102.reader import Iec102Reader, MeterOptions
from drivers.iec102.records import BILLING, EVENTS, PROFILE, profile_samples, window
from drivers.iec102.sim import QUARTER, SimMeter, absolute
from drivers.iec102.simhost import SimStream
from drivers.iec102.timetags import TimeA, TimeB
from drivers.readings import Sample
from drivers.transport.stream import ByteStream
from gateway.app.meter_records import MeterRecords
from storage.records import ReadingSet

MADRID = ZoneInfo("Europe/Madrid")
ORIGIN = dt.datetime(2026, 10, 1)
HOUR = dt.timedelta(hours=1)


class Site:
    """The simulated meter at a settable wall time, and the gateway's marks (MeterRecords)."""

    def __init__(self, now: dt.datetime, **options: Any) -> None:
        self.now = now
        self.meter = SimMeter(1, 7, 1234, ORIGIN, lambda: self.now)
        self.options = MeterOptions(1, 7, 1234, **options)
        self.marks = MeterRecords({})
        self.stored: list[ReadingSet] = []
        self.seen: list[tuple[Any, ...]] = []
        self.synced = False
        self.reader = self.restart()

    def restart(self) -> Iec102Reader:
        """A new reader (a restarted gateway) on marks loaded from what was stored."""
        held: dict[tuple[str, str], int] = {}
        for reading in self.stored:
            key = ("m1", reading.series)
            held[key] = max(reading.ts_ms, held.get(key, reading.ts_ms))
        self.marks = MeterRecords(held)

        async def open_stream() -> ByteStream:
            return SimStream(self.meter)
        self.reader = Iec102Reader(open_stream, name="line", wall_ms=self.gateway_ms,
                                   events=lambda *e: self.seen.append(e),
                                   records_until=self.marks.until,
                                   clock_synced=lambda: self.synced)
        return self.reader

    def gateway_ms(self) -> int:
        return int(self.now.replace(tzinfo=MADRID).timestamp() * 1000)

    async def poll(self) -> list[Sample]:
        samples = await self.reader.read("m1", self.options, 0.1)
        _, records = self.marks.split("m1", samples, self.gateway_ms(), 0)
        for record in records:  # as the service does once the writer took each
            self.marks.accepted(record)
        self.stored += records
        return samples

    def series(self, name: str) -> list[ReadingSet]:
        return [r for r in self.stored if r.series == name]


def ms(wall: dt.datetime) -> int:
    return int(wall.replace(tzinfo=MADRID).timestamp() * 1000)


def values(reading: ReadingSet) -> dict[str, Decimal | str]:
    return {v.quantity: v.value for v in reading.values}


def check_interval(reading: ReadingSet) -> None:
    end = dt.datetime.fromtimestamp(reading.ts_ms / 1000, MADRID).replace(tzinfo=None)
    quarters = (end - ORIGIN) // QUARTER
    assert values(reading) == {
        "import_active_energy": Decimal(absolute(1, quarters)),
        "export_active_energy": Decimal(absolute(2, quarters)),
        "reactive_energy_q1": Decimal(absolute(3, quarters)),
        "reactive_energy_q2": Decimal(absolute(4, quarters)),
        "reactive_energy_q3": Decimal(absolute(5, quarters)),
        "reactive_energy_q4": Decimal(absolute(6, quarters))}   # 7, 8 sent with IV: left out


async def test_profile_backfill_then_each_new_hour_once() -> None:
    site = Site(dt.datetime(2026, 12, 6, 12, 5, 30), profile_backfill_h=6)
    await site.poll()
    profile = site.series(PROFILE)
    assert [r.ts_ms for r in profile] == [ms(dt.datetime(2026, 12, 6, h)) for h in range(7, 13)]
    for reading in profile:
        check_interval(reading)
    await site.poll()   # the same hour: nothing new
    assert len(site.series(PROFILE)) == 6
    site.now += HOUR
    await site.poll()
    assert [r.ts_ms for r in site.series(PROFILE)][-1] == ms(dt.datetime(2026, 12, 6, 13))
    assert len(site.series(PROFILE)) == 7


async def test_profile_gap_is_caught_up_over_polls_once_after_a_restart() -> None:
    site = Site(dt.datetime(2026, 12, 6, 12, 5), profile_backfill_h=2, profile_most_h=24)
    await site.poll()
    site.now += dt.timedelta(days=2, hours=3)   # the gateway stopped for two days
    site.restart()
    for _ in range(4):
        await site.poll()
    stamps = [r.ts_ms for r in site.series(PROFILE)]
    expected = [ms(dt.datetime(2026, 12, 6, 11) + HOUR * i) for i in range(2 + 51)]
    assert stamps == expected   # every hour, in order, none twice
    check_interval(site.series(PROFILE)[-1])


async def test_quarter_hourly_profile() -> None:
    site = Site(dt.datetime(2026, 12, 6, 12, 5), record=12, profile_backfill_h=1)
    await site.poll()
    stamps = [r.ts_ms for r in site.series(PROFILE)]
    assert stamps == [ms(dt.datetime(2026, 12, 6, 11, 15) + QUARTER * i) for i in range(4)]
    check_interval(site.series(PROFILE)[0])


def test_profile_quality_bits() -> None:
    at = TimeA.of(dt.datetime(2026, 12, 6, 12))
    interval = Totals((Total(1, 500, 0x02), Total(2, 9, 0x80), Total(3, 7, 0x20)), at)
    samples = {s.quantity: s for s in profile_samples([interval], MADRID)}
    assert set(samples) == {"import_active_energy", "reactive_energy_q1", "error_flags"}
    assert samples["error_flags"].value == "0x22"   # AL and CY of the valid totals
    assert {s.at_ms for s in samples.values()} == {ms(dt.datetime(2026, 12, 6, 12))}
    clean = profile_samples([Totals((Total(1, 5, 0),), at)], MADRID)
    assert [s.quantity for s in clean] == ["import_active_energy"]


@given(st.integers(ms(dt.datetime(2026, 1, 1)), ms(dt.datetime(2027, 1, 1))),
       st.integers(0, 90 * 24 * 60), st.integers(1, 24 * 7))
def test_window_starts_past_the_mark_and_never_passes_the_meter(mark: int, ahead_min: int,
                                                                most_h: int) -> None:
    held = dt.datetime.fromtimestamp(mark / 1000, MADRID).replace(tzinfo=None)
    meter_wall = held + dt.timedelta(minutes=ahead_min)
    span = window(mark, meter_wall, MADRID, HOUR, dt.timedelta(hours=most_h))
    assert span.start > held.replace(second=0, microsecond=0)
    assert span.start - held <= dt.timedelta(minutes=1)
    assert span.end <= meter_wall
    assert span.end - span.start <= dt.timedelta(hours=most_h)


async def test_billing_closures_once_each_at_their_end() -> None:
    site = Site(dt.datetime(2026, 12, 6, 12, 5))
    await site.poll()
    await site.poll()
    closures = site.series(BILLING)
    assert [r.ts_ms for r in closures] == [ms(dt.datetime(2026, 11, 1)),
                                           ms(dt.datetime(2026, 12, 1))]
    november = values(closures[1])
    total = absolute(1, (dt.datetime(2026, 12, 1) - ORIGIN) // QUARTER)
    assert november["import_active_energy"] == Decimal(total)
    assert november["import_active_energy_t1"] == Decimal(total - total // 3)
    assert november["import_active_energy_t2"] == Decimal(total // 3)
    assert november["reactive_energy_q4"] == Decimal(
        absolute(6, (dt.datetime(2026, 12, 1) - ORIGIN) // QUARTER))
    assert november["max_demand_active_power_t1"] == Decimal(42000)
    assert november["max_demand_active_power_t2"] == Decimal(17000)
    assert november["max_demand_time_t1"] == "2026-11-02T09:15:00+01:00"
    assert november["excess_active_power_t1"] == Decimal(0)
    assert november["billing_date"] == "2026-11-01T00:00:00+01:00"
    site.now = dt.datetime(2027, 1, 1, 0, 30)   # the December period closes
    site.restart()
    await site.poll()
    assert [r.ts_ms for r in site.series(BILLING)][2:] == [ms(dt.datetime(2027, 1, 1))]


async def test_events_stored_once_across_a_restart() -> None:
    site = Site(dt.datetime(2026, 12, 6, 12, 5, 30), event_records=(52,))
    site.meter.events = [Event(3, 1, True, TimeB.of(dt.datetime(2026, 12, 6, 10, 0, 7))),
                         Event(3, 1, False, TimeB.of(dt.datetime(2026, 12, 6, 10, 0, 40))),
                         Event(1, 2, False, TimeB.of(dt.datetime(2026, 12, 6, 10, 0, 40)))]
    await site.poll()
    site.restart()
    await site.poll()
    site.meter.events.append(Event(7, 9, False, TimeB.of(dt.datetime(2026, 12, 6, 12, 0, 1))))
    site.restart()
    await site.poll()
    events = site.series(EVENTS)
    assert [r.ts_ms for r in events] == [ms(dt.datetime(2026, 12, 6, 10, 0, 7)),
                                         ms(dt.datetime(2026, 12, 6, 10, 0, 40)),
                                         ms(dt.datetime(2026, 12, 6, 12, 0, 1))]
    assert values(events[1]) == {"meter_event_r52_g3_c1": "end", "meter_event_r52_g1_c2": "end"}
    assert len([e for e in site.seen if e[0] == "meter_event"]) == 4   # each handed on once


async def test_clock_set_only_when_synced_and_within_the_step() -> None:
    site = Site(dt.datetime(2026, 12, 6, 12, 5, 30))
    site.meter.clock_offset = dt.timedelta(seconds=120)
    await site.poll()   # our clock is not synchronised: reported only
    assert site.meter.clock_offset == dt.timedelta(seconds=120)
    site.synced = True
    await site.poll()
    assert abs(site.meter.clock_offset) < dt.timedelta(seconds=1)
    kinds = [(e[0], e[2]) for e in site.seen]
    drift = ("meter_clock_drift", {"drift_s": 120})
    assert kinds == [drift, drift, ("meter_clock_set", {"drift_s": 120})]
    site.meter.clock_offset = dt.timedelta(hours=-2)   # beyond clock_max_step_s (300)
    await site.poll()
    assert site.meter.clock_offset == dt.timedelta(hours=-2)
    assert site.seen[-1][0] == "meter_clock_set_refused"
    assert site.seen[-1][2] == {"drift_s": -7200, "max_step_s": 300}


@given(st.lists(st.tuples(st.integers(1, 8), st.integers(0, 2**32 - 1), st.integers(0, 255)),
                min_size=1, max_size=8))
def test_profile_samples_keep_no_invalid_total_and_every_other_quality_bit(
        totals: list[tuple[int, int, int]]) -> None:
    at = TimeA.of(dt.datetime(2026, 12, 6, 12))
    samples = profile_samples([Totals(tuple(Total(*t) for t in totals), at)], MADRID)
    valid = [t for t in totals if t[0] <= 6 and not t[2] & 0x80]
    assert [s.value for s in samples if s.quantity != "error_flags"] == [
        Decimal(value) for _, value, _ in valid]
    flags = 0
    for _, _, quality in valid:
        flags |= quality
    assert [s.value for s in samples if s.quantity == "error_flags"] == (
        [f"0x{flags:02X}"] if flags else [])
    assert all(s.series == PROFILE and s.at_ms == ms(dt.datetime(2026, 12, 6, 12))
               for s in samples)


async def test_plugin_hands_the_gateway_marks_and_clock_state_to_the_reader() -> None:
    from types import SimpleNamespace

    from core.clock import FakeClock
    from drivers.iec102.plugin import Iec102MeterBus
    from drivers.iec102.simhost import TcpSim
    from drivers.plugin import Context

    now = dt.datetime(2026, 12, 6, 12, 5, 30)
    meter = SimMeter(1, 7, 1234, ORIGIN, lambda: now, clock_offset=dt.timedelta(seconds=90))
    sim = await TcpSim.start(meter)
    seen: list[tuple[Any, ...]] = []
    asked: list[tuple[str, str]] = []

    def until(meter_id: str, series: str) -> int | None:
        asked.append((meter_id, series))
        return ms(dt.datetime(2026, 12, 6, 10)) if series == PROFILE else None

    context = Context(open_serial=lambda _p: None, events=lambda *e: seen.append(e),
                      clock=FakeClock(ms(now)), data_dir=Path("."), records_until=until,
                      clock_synced=lambda: True)
    bus = SimpleNamespace(id="line", kind="tcp", host="127.0.0.1", tcp_port=sim.port)
    view = SimpleNamespace(id="m1", address=1, timeout_ms=1000,
                           options={"measuring_point": 7, "password": 1234})
    try:
        samples = await Iec102MeterBus(bus, context).read(view)
    finally:
        await sim.close()
    assert ("m1", PROFILE) in asked and ("m1", BILLING) in asked
    profile = sorted({s.at_ms or 0 for s in samples if s.series == PROFILE})
    assert profile == [ms(dt.datetime(2026, 12, 6, 11)), ms(dt.datetime(2026, 12, 6, 12))]
    assert [e[0] for e in seen] == ["meter_clock_drift", "meter_clock_set"]
    assert abs(meter.clock_offset) < dt.timedelta(seconds=1)
