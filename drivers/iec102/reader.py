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
from drivers.iec102.meter_events import EventSink, EventWatch
from drivers.iec102.objects import INVALID, Billing, Totals
from drivers.iec102.session import RECORD_HOURLY, Session, WrongPassword
from drivers.iec102.timetags import TimeA, tag_time
from drivers.readings import Sample
from drivers.transport.stream import ByteStream

LOGGER = logging.getLogger(__name__)
# object address of an integrated total -> quantity (REE: AI, AE, R1..R4)
TOTAL_QUANTITIES: Final = {1: ("import_active_energy", "kWh"),
                           2: ("export_active_energy", "kWh"),
                           3: ("reactive_energy_q1", "kvarh"), 4: ("reactive_energy_q2", "kvarh"),
                           5: ("reactive_energy_q3", "kvarh"), 6: ("reactive_energy_q4", "kvarh")}
TARIFF_ADDRESSES: Final = range(21, 27)   # billing object addresses of tariff periods 1..6
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


OpenStream = Callable[[], Awaitable[ByteStream]]
T = TypeVar("T")


def totals_samples(totals: Totals) -> list[Sample]:
    """The valid totals (IV clear) as register samples."""
    return [Sample(TOTAL_QUANTITIES[t.address][0], Decimal(t.value), TOTAL_QUANTITIES[t.address][1])
            for t in totals.totals if t.address in TOTAL_QUANTITIES and not t.quality & INVALID]


def billing_samples(records: list[Billing]) -> list[Sample]:
    """Per tariff period: active import, reactive inductive (Q1) and capacitive (Q4) registers
    and the period's maximum demand in W."""
    samples = []
    for record in records:
        if record.address not in TARIFF_ADDRESSES:
            continue
        suffix = f"_t{record.address - 20}"
        for name, unit, energy in (("import_active_energy", "kWh", record.active),
                                   ("reactive_energy_q1", "kvarh", record.reactive_inductive),
                                   ("reactive_energy_q4", "kvarh", record.reactive_capacitive)):
            if not energy.quality & INVALID:
                samples.append(Sample(name + suffix, Decimal(energy.absolute), unit))
        if not record.max_demand_quality & INVALID:
            samples.append(Sample("max_demand_active_power" + suffix,
                                  Decimal(record.max_demand) * 1000, "W"))
    return samples


class Iec102Reader:
    """Reads meters one at a time over the line `open_stream` gives (a fresh one per read: a
    modem or serial server session ends with each meter)."""

    def __init__(self, open_stream: OpenStream, *, name: str,
                 wall_ms: Callable[[], int] | None = None,
                 events: EventSink | None = None) -> None:
        self.open_stream = open_stream
        self.name = name
        self.wall_ms = wall_ms
        self.events = EventWatch(events)
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
            self.events.drift(meter_id, meter_time, self.wall_ms(), options.clock_drift_limit_s)
        samples = [Sample("meter_datetime", meter_time.isoformat(), "")]
        step = dt.timedelta(minutes=PERIOD_MINUTES.get(options.record, 60))
        wall = clock.wall()
        end = TimeA.of(wall.replace(second=0, microsecond=0), clock.rest.summer)
        start = TimeA.of(wall - step, clock.rest.summer)
        totals = await session.read_totals(options.record, start, end)
        if totals:
            samples += totals_samples(totals[-1])
        samples += billing_samples(await session.read_billing(options.contract))
        await self.events.collect(meter_id, session, options.event_records, wall, zone)
        return samples


def _kind(exc: DriverError) -> str:
    if isinstance(exc, WrongPassword):
        return "password_refused"
    if isinstance(exc, DeviceTimeout):
        return "timeouts"
    if isinstance(exc, ChecksumError):
        return "checksum_errors"
    return "refused" if "refused" in str(exc) else "other_errors"
