"""One wired M-Bus line as the gateway polls it: the stream opened on demand, meters read one
at a time (primary or secondary address, baud switch, reset / select data, clock sync),
counters per meter, and the secondary search / primary scan for the console and the CLI.

The line is 8E1 at the meter's baud; the stream comes from an injected opener (a serial port
`board/` opened, or a TCP converter), so this module opens no device itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from drivers.errors import DriverError, PortUnavailable
from drivers.mbus_wired import link
from drivers.mbus_wired import requests as rq
from drivers.mbus_wired.address import SELECTED, SecondaryAddress, SelectPattern
from drivers.mbus_wired.meter_address import MeterAddress
from drivers.mbus_wired.readout import readout_samples
from drivers.mbus_wired.responses import RspUd
from drivers.mbus_wired.search import PrimaryScan, SearchResult, scan_primary, search_step
from drivers.mbus_wired.session import GarbledAnswer, MbusMaster, MeterRefused, NoAnswer
from drivers.mbus_wired.stream_link import ByteStreamLink, EchoMissing
from drivers.plugin import SerialParams
from drivers.readings import Sample
from drivers.transport.stream import ByteStream

LOGGER = logging.getLogger(__name__)
CLOCK_SYNC_INTERVAL_S: Final = 86_400.0   # a meter's clock is set at most once a day
T = TypeVar("T")
StreamOpener = Callable[[int], Awaitable[ByteStream]]   # baud -> an open 8E1 stream


def serial_params(port: str, baud: int, rs485: Mapping[str, Any] | None = None) -> SerialParams:
    """What the board opens: M-Bus is 8E1 whatever the generic bus keys say (EN 13757-2)."""
    return SerialParams(port, baud, bytesize=8, parity="E", stopbits=1, rs485=dict(rs485 or {}))


@dataclass(frozen=True, slots=True)
class MeterSettings:
    """How one meter is read (the plugin builds it from the validated config keys)."""

    address: MeterAddress
    baud: int | None = None             # None: the bus's baud
    application_reset: bool = False     # CI 0x50 before every read
    select_data: int | None = None      # its subcode (EN 13757-3 table 13), implies the reset
    clock_sync: bool = False            # set the meter's clock (type F), once a day
    utc_offset_min: int = 0             # the meter's local time against UTC
    max_telegrams: int = 16


def _step_failure(exc: DriverError, ack_step: bool) -> str:
    """The counter a failed step adds to: what a technician reads off first."""
    if isinstance(exc, NoAnswer):
        return "e5_missing" if ack_step else "timeouts"
    if isinstance(exc, GarbledAnswer):
        return "collisions" if ack_step else "checksum"
    if isinstance(exc, MeterRefused):
        return "refused"
    if isinstance(exc, EchoMissing):
        return "echo_missing"
    if isinstance(exc, PortUnavailable):
        return "port_unavailable"
    return "frame_errors"


class MbusBus:
    """The meters of one line; one exchange at a time (polls, scans and CLI reads share it)."""

    def __init__(self, open_stream: StreamOpener, *, baud: int = 2400, name: str = "mbus",
                 attempts: int = link.ATTEMPTS, echo: str = "auto",
                 wall_s: Callable[[], float] | None = None,
                 monotonic: Callable[[], float] | None = None) -> None:
        import time

        self._open_stream = open_stream
        self.baud = baud
        self.name = name
        self.attempts = attempts
        self.echo = echo
        self._wall = wall_s or time.time
        self._mono = monotonic or time.monotonic
        self._stream: ByteStream | None = None
        self._master: MbusMaster | None = None
        self._lock = asyncio.Lock()
        self._counts: dict[str, Counter[str]] = {}
        self._clock_set_at: dict[str, float] = {}
        self._last_search: SearchResult | None = None
        self._failing: set[str] = set()

    # ---- the line ------------------------------------------------------------------------
    async def _line(self, baud: int) -> MbusMaster:
        stream = self._stream
        if stream is None or not stream.connected:
            if stream is not None:
                stream.close()
            self._stream = stream = await self._open_stream(baud)
            self._master = MbusMaster(ByteStreamLink(stream, echo=self.echo),
                                      attempts=self.attempts)
        assert self._master is not None
        stream.set_baud(baud)
        return self._master

    async def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
        self._stream = self._master = None

    @property
    def last_search(self) -> SearchResult | None:
        """The search under way or last run (the console shows its progress)."""
        return self._last_search

    def counters(self, meter_id: str) -> dict[str, int]:
        return dict(self._counts.get(meter_id, Counter()))

    def _count(self, meter_id: str, name: str, n: int = 1) -> None:
        self._counts.setdefault(meter_id, Counter())[name] += n

    # ---- reading a meter -----------------------------------------------------------------
    async def read_meter(self, meter_id: str, meter: MeterSettings) -> list[Sample]:
        """The meter's current values; raises DriverError (counted) when it gives none."""
        async with self._lock:
            try:
                telegrams = await self._readout(meter_id, meter)
            except DriverError as exc:
                if meter_id not in self._failing:   # once per outage, not every poll
                    self._failing.add(meter_id)
                    LOGGER.warning("mbus_meter_failed", extra={
                        "meter": meter_id, "bus": self.name, "error": str(exc)})
                raise
        if meter_id in self._failing:
            self._failing.discard(meter_id)
            LOGGER.info("mbus_meter_recovered", extra={"meter": meter_id, "bus": self.name})
        samples, errors = readout_samples(telegrams)
        self._count(meter_id, "reads_ok")
        self._count(meter_id, "telegrams", len(telegrams))
        if errors:
            self._count(meter_id, "record_errors", len(errors))
            LOGGER.warning("meter_record_errors", extra={"meter": meter_id,
                                                         "errors": [str(e) for e in errors]})
        return samples

    async def _readout(self, meter_id: str, meter: MeterSettings) -> list[RspUd]:
        """At the meter's baud; when it is silent there, switch it over from the bus's baud
        (CI 0xB8-0xBF: a meter back from a power cut listens at its default again)."""
        switchable = meter.baud is not None and meter.baud != self.baud
        try:
            return await self._read_at(meter_id, meter, meter.baud or self.baud,
                                       count=not switchable)
        except NoAnswer:
            if not switchable:
                raise
        assert meter.baud is not None
        master = await self._step(meter_id, self._line(self.baud), ack=False)
        target = await self._address(meter_id, master, meter.address, count=True)
        await self._step(meter_id, master.switch_baud(target, meter.baud), ack=True)
        self._count(meter_id, "baud_switches")
        return await self._read_at(meter_id, meter, meter.baud, count=True)

    async def _read_at(self, meter_id: str, meter: MeterSettings, baud: int, *,
                       count: bool) -> list[RspUd]:
        master = await self._step(meter_id, self._line(baud), ack=False, count=count)
        target = await self._address(meter_id, master, meter.address, count=count)
        if meter.application_reset or meter.select_data is not None:
            await self._step(meter_id, master.send(
                rq.ApplicationReset(target, True, meter.select_data)), ack=True, count=count)
        if meter.clock_sync:
            await self._sync_clock(meter_id, master, target, meter.utc_offset_min)
        master.max_telegrams = meter.max_telegrams
        return await self._step(meter_id, master.read(target), ack=False, count=count)

    async def _address(self, meter_id: str, master: MbusMaster, address: MeterAddress, *,
                       count: bool) -> int:
        """The primary address to talk to: 253 once a secondary address is selected."""
        if isinstance(address, SecondaryAddress):
            await self._step(meter_id, master.select(address.pattern()), ack=True, count=count)
            return SELECTED
        return address

    async def _sync_clock(self, meter_id: str, master: MbusMaster, target: int,
                          utc_offset_min: int) -> None:
        last = self._clock_set_at.get(meter_id)
        if last is not None and self._mono() - last < CLOCK_SYNC_INTERVAL_S:
            return
        now = datetime.fromtimestamp(self._wall(), UTC) + timedelta(minutes=utc_offset_min)
        moment = now.replace(second=0, microsecond=0, tzinfo=None)
        await self._step(meter_id, master.send(rq.SetClock(target, True, moment)), ack=True)
        self._clock_set_at[meter_id] = self._mono()
        self._count(meter_id, "clock_syncs")
        LOGGER.info("meter_clock_set", extra={"meter": meter_id, "moment": moment.isoformat()})

    async def _step(self, meter_id: str, step: Awaitable[T], *, ack: bool,
                    count: bool = True) -> T:
        """Await one step of a read, counting its failure by kind (`ack`: it wanted an E5)."""
        try:
            return await step
        except DriverError as exc:
            if count:
                self._count(meter_id, _step_failure(exc, ack))
            if isinstance(exc, PortUnavailable):
                await self.close()
            raise

    # ---- finding meters ------------------------------------------------------------------
    async def search(self, base: SelectPattern | None = None, seconds: float | None = None,
                     *, resume: bool = False) -> SearchResult:
        """Every meter by secondary address (at the bus's baud), one probe at a time between
        the polls (a poll never waits for a whole search: the watchdog wants the schedulers
        stepping); with `seconds`, what was found when the time ran out. `resume`: carry on
        with the last search if its time ran out (250 meters at 2400 baud take longer than one
        console scan may)."""
        last = self._last_search
        resumed = resume and last is not None and not last.done and last.base == base
        result = last if resumed and last is not None else SearchResult(base=base)
        result.timed_out = False
        self._last_search = result
        try:
            async with asyncio.timeout(seconds):
                while not result.done:
                    async with self._lock:
                        await search_step(await self._line(self.baud), result)
        except TimeoutError:
            result.timed_out = True
        return result

    async def scan_primary(self, addresses: range = range(0, 251),
                           seconds: float | None = None) -> PrimaryScan:
        """SND_NKE to each address, one at a time between the polls."""
        scan = PrimaryScan()
        try:
            async with asyncio.timeout(seconds):
                for address in addresses:
                    async with self._lock:
                        await scan_primary(await self._line(self.baud),
                                           range(address, address + 1), scan)
        except TimeoutError:
            scan.timed_out = True
        return scan

    async def read_address(self, address: MeterAddress) -> list[RspUd]:
        """Every telegram of one meter, unmapped (the CLI's `read`)."""
        async with self._lock:
            return await self._readout("cli", MeterSettings(address))
