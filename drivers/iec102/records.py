"""A 102 meter's own records as dated samples (`Sample.at_ms`, `series`): load-profile intervals
(series "load_profile"), billing closures ("billing") and events ("events"), and the time range
to read each from (the gateway's mark of the series, `Context.records_until`, or a backfill
window when it holds none), bounded per read so a long gap is caught up over several polls.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

from drivers.errors import FrameError
from drivers.iec102.objects import INVALID, Billing, Event, Totals
from drivers.iec102.timetags import TimeA, tag_time
from drivers.readings import Sample

PROFILE: Final = "load_profile"
BILLING: Final = "billing"
EVENTS: Final = "events"
# object address of an integrated total -> quantity (REE: AI, AE, R1..R4)
TOTAL_QUANTITIES: Final = {1: ("import_active_energy", "kWh"),
                           2: ("export_active_energy", "kWh"),
                           3: ("reactive_energy_q1", "kvarh"), 4: ("reactive_energy_q2", "kvarh"),
                           5: ("reactive_energy_q3", "kvarh"), 6: ("reactive_energy_q4", "kvarh")}
BILLING_ALL: Final = 20                   # the billing object address of all tariff periods
TARIFF_ADDRESSES: Final = range(21, 27)   # tariff periods 1..6
RecordsUntil = Callable[[str, str], int | None]


@dataclass(frozen=True, slots=True)
class Window:
    """Meter wall times (naive, the meter's local time) of one read of a series."""

    start: dt.datetime
    end: dt.datetime

    def tags(self, zone: ZoneInfo) -> tuple[TimeA, TimeA]:
        """The range as time tags A, SU set where the zone keeps summer time."""
        return tuple(TimeA.of(t, bool(t.replace(tzinfo=zone).dst()))  # type: ignore[return-value]
                     for t in (self.start, self.end))


def window(until_ms: int | None, meter_wall: dt.datetime, zone: ZoneInfo,
           backfill: dt.timedelta, most: dt.timedelta, *, past_mark: bool = True) -> Window:
    """From one minute after the gateway's mark (time tags A count minutes: the marked record
    itself is not asked again; `past_mark=False` starts at the mark's own minute, for records
    with seconds), or `backfill` before the meter's clock when there is no mark, to at most
    `most` later (the rest waits for the next poll), never past the meter's clock."""
    if until_ms is None:
        start = meter_wall - backfill
    else:
        held = dt.datetime.fromtimestamp(until_ms / 1000, zone).replace(tzinfo=None)
        start = held.replace(second=0, microsecond=0) + dt.timedelta(minutes=int(past_mark))
    return Window(start, min(meter_wall, start + most))


def instant_ms(tag: TimeA, zone: ZoneInfo) -> int:
    return int(tag_time(tag, zone).timestamp() * 1000)


def quality_text(quality: int) -> str:
    return f"0x{quality:02X}"


def profile_samples(intervals: Iterable[Totals], zone: ZoneInfo) -> list[Sample]:
    """Each interval's absolute totals at the interval's end. A total with IV set is left out
    (an invalid value is not stored as if it were one); the other quality bits of the interval
    (carry, adjusted, time verified, parameters changed, intrusion, incomplete), OR-ed over its
    totals, go as `error_flags` ("0x02") when any is set."""
    samples = []
    for interval in intervals:
        try:
            at_ms = instant_ms(interval.time, zone)
        except FrameError:
            continue   # an interval with no date cannot be placed
        flags = 0
        for total in interval.totals:
            if total.address not in TOTAL_QUANTITIES or total.quality & INVALID:
                continue
            name, unit = TOTAL_QUANTITIES[total.address]
            samples.append(Sample(name, Decimal(total.value), unit, at_ms, PROFILE))
            flags |= total.quality
        if flags:
            samples.append(Sample("error_flags", quality_text(flags), "", at_ms, PROFILE))
    return samples


def tariff_samples(record: Billing, at_ms: int | None, series: str, zone: ZoneInfo,
                   *, closure: bool = True) -> list[Sample]:
    """One billing record (address 20 all periods, no suffix; 21..26 tariff N, `_tN`): active
    import, reactive inductive (Q1) and capacitive (Q4) registers, maximum demand in W with its
    time (`max_demand_time`, ISO 8601 in the site zone) and the excess power in W (those two
    for a closure only: they are no quantity of core.quantities, and a value read now goes up
    under the known names); values with IV set are left out."""
    suffix = "" if record.address == BILLING_ALL else f"_t{record.address - BILLING_ALL}"
    out = []
    for name, unit, energy in (("import_active_energy", "kWh", record.active),
                               ("reactive_energy_q1", "kvarh", record.reactive_inductive),
                               ("reactive_energy_q4", "kvarh", record.reactive_capacitive)):
        if not energy.quality & INVALID:
            out.append(Sample(name + suffix, Decimal(energy.absolute), unit, at_ms, series))
    if not record.max_demand_quality & INVALID:
        out.append(Sample("max_demand_active_power" + suffix, Decimal(record.max_demand) * 1000,
                          "W", at_ms, series))
    if not closure:
        return out
    if not record.max_demand_quality & INVALID:
        try:
            when = tag_time(record.max_demand_time, zone).isoformat()
        except FrameError:
            when = ""
        if when:
            out.append(Sample("max_demand_time" + suffix, when, "", at_ms, series))
    if not record.excess_quality & INVALID:
        out.append(Sample("excess_active_power" + suffix, Decimal(record.excess) * 1000, "W",
                          at_ms, series))
    return out


def closure_samples(records: Iterable[Billing], zone: ZoneInfo) -> list[Sample]:
    """Closed billing periods as records of series "billing" at each period's end instant,
    with the period's start as `billing_date` (ISO 8601) beside its values."""
    samples = []
    for record in records:
        if record.address != BILLING_ALL and record.address not in TARIFF_ADDRESSES:
            continue
        try:
            at_ms = instant_ms(record.period_end, zone)
            start = tag_time(record.period_start, zone).isoformat()
        except FrameError:
            continue
        if record.address == BILLING_ALL:
            samples.append(Sample("billing_date", start, "", at_ms, BILLING))
        samples += tariff_samples(record, at_ms, BILLING, zone)
    return samples


def event_sample(record: int, event: Event, zone: ZoneInfo) -> Sample:
    """One meter event as a record of series "events" at its own instant: quantity
    `meter_event_r<record>_g<group>_c<code>` (one instant holds several events of different
    groups), value "start" or "end" (SPI)."""
    at_ms = int(tag_time(event.time, zone).timestamp() * 1000)
    return Sample(f"meter_event_r{record}_g{event.group}_c{event.code}",
                  "start" if event.spi else "end", "", at_ms, EVENTS)
