"""One poll of a 102 meter as the gateway runs it: open the line (serial from the board or TCP),
open the session with the password, read the clock, the absolute totals of the last closed
period and the current billing values of the configured contract, end the session; the values
mapped to the gateway's quantities (docs/iec102.md, "Quantities").
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, TypeVar
from zoneinfo import ZoneInfo

from drivers.errors import ChecksumError, DeviceTimeout, DriverError, PortUnavailable
from drivers.iec102.master import LinkMaster
from drivers.iec102.meter_events import ClockPolicy, EventSink, EventWatch
from drivers.iec102.objects import INVALID, Billing, Totals
from drivers.iec102.records import (
    BILLING,
    PROFILE,
    TARIFF_ADDRESSES,
    TOTAL_QUANTITIES,
    RecordsUntil,
    closure_samples,
    profile_samples,
    tariff_samples,
    window,
)
from drivers.iec102.session import RECORD_HOURLY, RequestRefused, Session, WrongPassword
from drivers.iec102.timetags import TimeA, tag_time
from drivers.readings import Sample
from drivers.transport.stream import ByteStream

LOGGER = logging.getLogger(__name__)
PERIOD_MINUTES: Final = {11: 60, 12: 15}
CLOSE_TIMEOUT_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class MeterOptions:
    link_address: int
    measuring_point: int
    password: int
    contract: int = 1
    record: int = RECORD_HOURLY
    zone: str = "Europe/Madrid"
    event_records: tuple[int, ...] = ()   # e.g. 52 supply, 53 synchronisation, 54 parameters
    clock_drift_limit_s: int = 30
    clock_max_step_s: int = 300          # a larger step is left for a technician
    profile_backfill_h: int = 48         # how far back a meter with no profile stored is read
    profile_most_h: int = 168            # at most this much profile per poll (catching up)
    billing_backfill_days: int = 400     # closures read back when none is stored

    @property
    def clock_policy(self) -> ClockPolicy:
        return ClockPolicy(self.clock_drift_limit_s, self.clock_max_step_s)


OpenStream = Callable[[], Awaitable[ByteStream]]
T = TypeVar("T")


def totals_samples(totals: Totals) -> list[Sample]:
    """The valid totals (IV clear) as register samples."""
    return [Sample(TOTAL_QUANTITIES[t.address][0], Decimal(t.value), TOTAL_QUANTITIES[t.address][1])
            for t in totals.totals if t.address in TOTAL_QUANTITIES and not t.quality & INVALID]


def billing_samples(records: list[Billing], zone: ZoneInfo) -> list[Sample]:
    """The current period, read now, per tariff period: active import, reactive inductive (Q1)
    and capacitive (Q4) registers and the maximum demand in W."""
    return [s for r in records if r.address in TARIFF_ADDRESSES
            for s in tariff_samples(r, None, "", zone, closure=False)]


class Iec102Reader:
    """Reads meters one at a time over the line `open_stream` gives (a fresh one per read: a
    modem or serial server session ends with each meter)."""

    def __init__(self, open_stream: OpenStream, *, name: str,
                 wall_ms: Callable[[], int] | None = None,
                 events: EventSink | None = None, records_until: RecordsUntil | None = None,
                 clock_synced: Callable[[], bool] | None = None) -> None:
        self.open_stream = open_stream
        self.name = name
        self.wall_ms = wall_ms
        self.records_until = records_until or (lambda _m, _s: None)
        self.clock_synced = clock_synced or (lambda: False)
        self.events = EventWatch(events, self.records_until)
        self._lock = asyncio.Lock()
        self._counts: dict[str, Counter[str]] = {}

    def counters(self, meter_id: str) -> dict[str, int]:
        return dict(self._counts.get(meter_id, Counter()))

    async def read(self, meter_id: str, options: MeterOptions, timeout_s: float) -> list[Sample]:
        """One poll: clock, the last period's totals, the contract's tariff registers."""
        return await self.run(meter_id, options, timeout_s,
                              lambda session: self._values(meter_id, session, options))

    async def run(self, meter_id: str, options: MeterOptions, timeout_s: float,
                  action: Callable[[Session], Awaitable[T]]) -> T:
        """`action` inside one session (line opened, password given, session ended, line
        closed whatever happens), counted for `meter_id`."""
        counts = self._counts.setdefault(meter_id, Counter())
        async with self._lock:
            try:
                stream = await self.open_stream()
            except PortUnavailable:
                counts["port_errors"] += 1
                raise
            master = LinkMaster(stream, options.link_address, answer_timeout_s=timeout_s,
                                meter=meter_id)
            try:
                result = await self._session(Session(master, options.measuring_point),
                                             options, action)
            except DriverError as exc:
                counts[_kind(exc)] += 1
                raise
            finally:
                counts.update({f"link_{k}": v for k, v in master.counts.items()})
                stream.close()
        counts["reads_ok"] += 1
        return result

    async def _session(self, session: Session, options: MeterOptions,
                       action: Callable[[Session], Awaitable[T]]) -> T:
        await session.open(options.password)
        try:
            return await action(session)
        finally:
            with contextlib.suppress(DriverError, TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await session.close()

    async def _values(self, meter_id: str, session: Session,
                      options: MeterOptions) -> list[Sample]:
        zone = ZoneInfo(options.zone)
        clock = await session.read_clock()
        meter_time = tag_time(clock, zone)
        if self.wall_ms is not None:
            await self.events.clock(meter_id, session, meter_time, self.wall_ms(),
                                    self.clock_synced(), options.clock_policy)
        samples = [Sample("meter_datetime", meter_time.isoformat(), "")]
        step = dt.timedelta(minutes=PERIOD_MINUTES.get(options.record, 60))
        wall = clock.wall()
        end = TimeA.of(wall.replace(second=0, microsecond=0), clock.rest.summer)
        start = TimeA.of(wall - step, clock.rest.summer)
        totals = await session.read_totals(options.record, start, end)
        if totals:
            samples += totals_samples(totals[-1])
        samples += billing_samples(await session.read_billing(options.contract), zone)
        samples += await self._profile(meter_id, session, options, wall, zone)
        samples += await self._closures(meter_id, session, options, wall, zone)
        samples += await self.events.collect(meter_id, session, options.event_records, wall,
                                             zone)
        return samples

    async def _profile(self, meter_id: str, session: Session, options: MeterOptions,
                       wall: dt.datetime, zone: ZoneInfo) -> list[Sample]:
        """The profile record's intervals after the newest the gateway holds."""
        span = window(self.records_until(meter_id, PROFILE), wall, zone,
                      dt.timedelta(hours=options.profile_backfill_h),
                      dt.timedelta(hours=options.profile_most_h))
        if span.start >= span.end:
            return []
        try:
            intervals = await session.read_totals(options.record, *span.tags(zone))
        except RequestRefused:
            return []   # nothing in the range (cause 13)
        return profile_samples(intervals, zone)

    async def _closures(self, meter_id: str, session: Session, options: MeterOptions,
                        wall: dt.datetime, zone: ZoneInfo) -> list[Sample]:
        """The contract's billing periods closed after the newest the gateway holds."""
        back = dt.timedelta(days=options.billing_backfill_days)
        span = window(self.records_until(meter_id, BILLING), wall, zone, back, back)
        if span.start >= span.end:
            return []
        try:
            closed = await session.read_billing(options.contract, *span.tags(zone))
        except RequestRefused:
            return []
        return closure_samples(closed, zone)


def _kind(exc: DriverError) -> str:
    if isinstance(exc, WrongPassword):
        return "password_refused"
    if isinstance(exc, DeviceTimeout):
        return "timeouts"
    if isinstance(exc, ChecksumError):
        return "checksum_errors"
    return "refused" if "refused" in str(exc) else "other_errors"
