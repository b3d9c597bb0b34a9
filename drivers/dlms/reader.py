"""Polled DLMS meters on one bus: an RS-485 line or optical port (HDLC, one line for every
meter on it, a connection per read) or a TCP host (the wrapper, a connection per read).

One read: link up (SNRM/UA or TCP connect), association, GET with-list of the profile's
registers (attribute 2, and attribute 3 until the scaler is known: it is kept per meter),
the clock, release, link down, counters flushed. A timeout or a damaged frame is retried
once with a fresh connection (`READ_ATTEMPTS`); a refusal is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from drivers.dlms.axdr import Data
from drivers.dlms.client import DEFAULT_SYSTEM_TITLE, Association, Authentication, Credentials
from drivers.dlms.cosem import (
    CLOCK,
    DISCONNECT_CONTROL,
    REGISTER,
    ObjectValue,
    ScalerUnit,
    clock_time,
    obis_bytes,
    register_value,
)
from drivers.dlms.counters import CounterFile
from drivers.dlms.errors import CipherError, ReplayRefused, ServiceError
from drivers.dlms.hdlc import Address
from drivers.dlms.keys import Secrets
from drivers.dlms.link import LinkParameters
from drivers.dlms.links import PROPOSED, HdlcLink, Timeouts, WrapperLink
from drivers.dlms.push import samples
from drivers.dlms.read_profiles import ReadProfile
from drivers.errors import (
    ChecksumError,
    DeviceRejected,
    DeviceTimeout,
    DriverError,
    FrameError,
    PortUnavailable,
)
from drivers.readings import Sample
from drivers.transport.stream import ByteStream

LOGGER = logging.getLogger(__name__)
READ_ATTEMPTS: Final = 2
READ_RETRYABLE: Final = (DeviceTimeout, ChecksumError)
MAX_LIST_ITEMS: Final = 10  # attributes per GET with-list (meters limit the list)
CONNECT_TIMEOUT_S: Final = 5.0
T = TypeVar("T")
_FAILURES: Final = ((PortUnavailable, "port_unavailable"), (DeviceTimeout, "timeouts"),
                    (ChecksumError, "checksum"), (ReplayRefused, "replays"),
                    (CipherError, "cipher_errors"), (DeviceRejected, "rejected"),
                    (FrameError, "frame_errors"))


@dataclass(frozen=True)
class MeterSettings:
    """One meter's addressing, credentials and profile."""

    meter_id: str
    credentials: Credentials
    profile: ReadProfile
    client: int = 16  # client SAP (HDLC) / client wPort (TCP)
    physical: int = 17  # lower HDLC address (a multi-drop meter's own)
    logical_device: int = 1  # upper HDLC address / server wPort
    address_size: int = 2  # 1, 2 or 4 bytes on the wire
    timeout_s: float = 3.0

    def server_address(self) -> Address:
        if self.address_size == 1:
            return Address(self.logical_device)
        return Address(self.logical_device, self.physical, self.address_size)


OpenLine = Callable[[], ByteStream]
OpenTcp = Callable[[float], Awaitable[ByteStream]]
SignOn = Callable[[ByteStream], Awaitable[object]]
Records = Callable[[Association], Awaitable[list[Sample]]]


class DlmsBus:
    """Either `open_line` (HDLC over one serial line) or `open_tcp` (wrapper)."""

    def __init__(self, counters: CounterFile, *, open_line: OpenLine | None = None,
                 open_tcp: OpenTcp | None = None, proposed: LinkParameters = PROPOSED,
                 sign_on: SignOn | None = None) -> None:
        if (open_line is None) == (open_tcp is None):
            raise ValueError("a DLMS bus is either a serial line or a TCP host")
        self.counter_file = counters
        self._open_line, self._open_tcp = open_line, open_tcp
        self._proposed = proposed
        self._sign_on = sign_on  # mode E: the optical head's text sign-on before each link
        self._line: ByteStream | None = None
        self._counters: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._scalers: dict[str, dict[str, ScalerUnit | None]] = defaultdict(dict)
        self._lock = asyncio.Lock()  # one exchange on a line at a time: polls and commands
        # meter id -> the breaker's output_state last read (a poll, a switch): the feedback
        self.breaker_seen: dict[str, bool] = {}

    def counters(self, meter_id: str) -> dict[str, int]:
        return dict(self._counters[meter_id])

    async def close(self) -> None:
        if self._line is not None:
            self._line.close()
            self._line = None

    async def read_meter(self, meter: MeterSettings,
                         records: Records | None = None) -> list[Sample]:
        """The registers and clock; then, in the same association, `records` (the meter's
        own dated records, drivers/dlms/records.py)."""
        async def work(association: Association) -> tuple[list[ObjectValue], list[Sample]]:
            objects = await read_objects(association, meter.profile,
                                         self._scalers[meter.meter_id])
            return objects, (await records(association) if records is not None else [])

        objects, dated = await self.run(meter, work)
        self._counters[meter.meter_id]["values"] += len(objects)
        breaker = meter.profile.disconnector
        for obj in objects:
            if obj.obis == breaker and isinstance(obj.value, bool):
                self.breaker_seen[meter.meter_id] = obj.value
        return [*samples(objects), *dated]

    async def run(self, meter: MeterSettings, work: Callable[[Association], Awaitable[T]]) -> T:
        """`work` inside an association, retried once on a timeout or a damaged frame."""
        async with self._lock:
            return await self._run(meter, work)

    async def _run(self, meter: MeterSettings, work: Callable[[Association], Awaitable[T]]) -> T:
        counts = self._counters[meter.meter_id]
        counts["reads"] += 1
        for attempt in range(READ_ATTEMPTS):
            try:
                async with self.associated(meter) as association:
                    result = await work(association)
                counts["reads_ok"] += 1
                return result
            except READ_RETRYABLE as error:
                if attempt + 1 < READ_ATTEMPTS:
                    counts["retries"] += 1
                    continue
                self._failed(meter.meter_id, error)
                raise
            except DriverError as error:
                self._failed(meter.meter_id, error)
                raise
        raise AssertionError("unreachable")

    def _failed(self, meter_id: str, error: DriverError) -> None:
        kind = next((name for cls, name in _FAILURES if isinstance(error, cls)), "errors")
        self._counters[meter_id][kind] += 1
        if isinstance(error, PortUnavailable):
            self._drop_line()
        LOGGER.warning("dlms_read_failed", extra={"meter": meter_id, "error": str(error),
                                                  "error_type": type(error).__name__})

    @contextlib.asynccontextmanager
    async def associated(self, meter: MeterSettings) -> AsyncIterator[Association]:
        """An open link and an association; released and closed on the way out, whatever
        happened (cancellation included); the counters are flushed."""
        timeouts = Timeouts(response_s=meter.timeout_s)
        stream, owned = await self._stream(meter)
        stream.meter = meter.meter_id
        link: HdlcLink | WrapperLink
        if self._open_line is not None:
            link = HdlcLink(stream, Address(meter.client), meter.server_address(),
                            proposed=self._proposed, timeouts=timeouts)
        else:
            link = WrapperLink(stream, meter.client, meter.logical_device, timeouts=timeouts)
        association = Association(
            link, meter.credentials,
            own_counter=lambda: self.counter_file.next_client(meter.meter_id),
            server_guard=self.counter_file.server_guard(meter.meter_id))
        try:
            if self._sign_on is not None:
                await self._sign_on(stream)
            await link.open()
            await association.associate()
            yield association
            with contextlib.suppress(DeviceTimeout, FrameError, ServiceError):
                await association.release()
        finally:
            try:
                with contextlib.suppress(DriverError):
                    await link.close()
            finally:
                self.counter_file.flush()
                if owned:
                    stream.close()

    async def _stream(self, meter: MeterSettings) -> tuple[ByteStream, bool]:
        if self._open_tcp is not None:
            return await self._open_tcp(min(CONNECT_TIMEOUT_S, meter.timeout_s * 2)), True
        if self._line is None or not self._line.connected:
            assert self._open_line is not None
            self._line = self._open_line()
        return self._line, False

    def _drop_line(self) -> None:
        if self._line is not None:
            self._line.close()
            self._line = None


async def read_objects(association: Association, profile: ReadProfile,
                       known: dict[str, ScalerUnit | None]) -> list[ObjectValue]:
    """The profile's registers (exact, scaled) and the meter's clock."""
    wanted: list[tuple[str, int]] = []
    for code in profile.registers:
        wanted.append((code, 2))
        if code not in known and code not in profile.scalers:
            wanted.append((code, 3))
    if profile.clock:
        wanted.append((profile.clock, 2))
    if profile.disconnector:
        wanted.append((profile.disconnector, 2))  # output_state: what the breaker is doing
    kinds = {profile.clock: CLOCK, profile.disconnector: DISCONNECT_CONTROL}
    results: dict[tuple[str, int], Data | int] = {}
    for first in range(0, len(wanted), MAX_LIST_ITEMS):
        group = wanted[first:first + MAX_LIST_ITEMS]
        answers = await association.get_many(
            [(kinds.get(code, REGISTER), obis_bytes(code), index) for code, index in group])
        results.update(zip(group, answers, strict=True))
    return _objects(profile, results, known)


def _objects(profile: ReadProfile, results: dict[tuple[str, int], Data | int],
             known: dict[str, ScalerUnit | None]) -> list[ObjectValue]:
    out = []
    for code in profile.registers:
        scaler_data = results.get((code, 3))
        if isinstance(scaler_data, Data):
            known[code] = ScalerUnit.from_data(scaler_data)
        elif (code, 3) in results:
            known[code] = None  # no scaler_unit (or no object): no unit, never guessed
        value = results.get((code, 2))
        if not isinstance(value, Data):
            continue  # absent on this meter (object_undefined): not a reading
        scaler = profile.scalers.get(code) or known.get(code)
        out.append(register_value(code, value, scaler))
    clock = results.get((profile.clock or "", 2))
    if profile.clock and isinstance(clock, Data):
        out.append(ObjectValue(profile.clock, clock_time(clock).text()))
    breaker = results.get((profile.disconnector or "", 2))
    if profile.disconnector and isinstance(breaker, Data) and isinstance(breaker.value, bool):
        out.append(ObjectValue(profile.disconnector, breaker.value))  # no sample: a state
    return out


def meter_credentials(opts: dict[str, Any], secrets: Secrets, key_id: str) -> Credentials:
    """The association's credentials from a meter's keys and its secrets (DriverError naming
    the key id when one is missing; the secret itself is never named)."""
    auth = Authentication(opts.get("authentication") or "none")
    ciphered = opts.get("ciphered")
    title = opts.get("system_title") or ""
    try:
        return Credentials(auth, password=secrets.password, keys=secrets.keys(),
                           ciphered=auth is Authentication.HLS_GMAC if ciphered is None
                           else bool(ciphered),
                           system_title=bytes.fromhex(title) if title else DEFAULT_SYSTEM_TITLE)
    except ValueError as error:
        raise DriverError(f"key id {key_id!r}: {error} (see the DLMS key file)") from None
