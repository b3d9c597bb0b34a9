"""Async Modbus master over the transport kit: one request at a time per bus, retries,
per-meter backoff, counters and the not-available report."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from drivers.errors import DeviceRejected, DeviceTimeout, DriverError, FrameError, PortUnavailable
from drivers.modbus.decode import apply_ratio, decode_register
from drivers.modbus.link import (
    CONNECT_TIMEOUT_S,
    FdOpener,
    SerialBusSpec,
    TcpBusSpec,
    TcpTransactions,
    bus_name,
    exchange_rtu_pdu,
    open_bus_stream,
    read_pdu,
    registers_of,
)
from drivers.modbus.plan import ReadRequest, plan_for
from drivers.modbus.profiles import Profile
from drivers.modbus.write import WriteRequest, check_echo, write_pdu
from drivers.readings import Sample
from drivers.transport.stream import ByteStream

LOGGER = logging.getLogger(__name__)

ATTEMPTS_PER_REQUEST: Final[int] = 2  # one retry: a lone CRC hit is common on long RS-485 runs
BACKOFF_FIRST_S: Final[float] = 2.0  # a meter that just failed is retried on the next cycle-ish
BACKOFF_MAX_S: Final[float] = 300.0  # a dead meter is still probed every five minutes
SCAN_REGISTER: Final[int] = 0  # any answer, even an exception, proves a slave is there

_COUNTER_NAMES: Final[tuple[str, ...]] = (
    "reads", "reads_ok", "requests", "retries", "timeout", "crc", "wrong_slave", "half_frame",
    "garbage", "exception", "port_unavailable", "skipped_backoff", "values", "values_absent",
    "values_out_of_range",
)
# An event sink like the service's record_event: (kind, meter id, data, severity).
EventHook = Callable[[str, str | None, dict[str, Any], str], None]
NOT_AVAILABLE_EVENT: Final[str] = "modbus_value_not_available"
# the bus specs and the connect timeout live with the link (how a bus opens); named here too
__all__ = ["ATTEMPTS_PER_REQUEST", "BACKOFF_FIRST_S", "BACKOFF_MAX_S", "CONNECT_TIMEOUT_S",
           "NOT_AVAILABLE_EVENT", "EventHook", "ModbusBus", "SerialBusSpec", "TcpBusSpec"]


@dataclass
class _MeterState:
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTER_NAMES, 0))
    failures: int = 0
    retry_at: float = 0.0
    warned: bool = False
    # quantities missing from the last good read: an event only when one goes missing anew
    missing: frozenset[str] = frozenset()


class ModbusBus:
    """One RS-485 line or TCP gateway; read meters on it one request at a time."""

    def __init__(
        self, spec: SerialBusSpec | TcpBusSpec, *, open_fd: FdOpener | None = None,
        clock: Callable[[], float] = time.monotonic, on_event: EventHook | None = None,
    ) -> None:
        """`open_fd` opens a serial bus's port (board/ does, the one place that opens devices).
        `clock` drives the backoff only (tests step it); gaps and timeouts use real time.
        `on_event` receives the per-meter events (a quantity not available or out of range)."""
        self._clock = clock
        self._on_event = on_event
        self.spec = spec
        self._open_fd = open_fd
        self._lock = asyncio.Lock()
        self._meters: dict[str, _MeterState] = {}
        self._stream: ByteStream | None = None
        self._tcp = TcpTransactions()
        self._last_io = 0.0
        self._port_was_down = False
        self.name = bus_name(spec)

    def counters(self, meter_id: str) -> dict[str, int]:
        """Copy of one meter's counters (all zero for a meter never read)."""
        return dict(self._state(meter_id).counters)

    def _state(self, meter_id: str) -> _MeterState:
        return self._meters.setdefault(meter_id, _MeterState())

    async def _connected(self) -> ByteStream:
        if self._stream is not None and self._stream.connected:
            return self._stream
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        stream = await open_bus_stream(self.spec, self._open_fd)
        LOGGER.info("modbus_bus_connected", extra={"bus": self.name})
        self._stream, self._tcp = stream, TcpTransactions()
        return stream

    async def close(self) -> None:
        async with self._lock:
            if self._stream is not None:
                self._stream.close()
                self._stream = None

    async def read_meter(
        self, meter_id: str, address: int, profile: Profile, *, ct_ratio: Decimal = Decimal(1),
        vt_ratio: Decimal = Decimal(1), timeout_s: float,
    ) -> list[Sample]:
        """Read every register of `profile` from slave `address`; exact samples, NaNs left out."""
        state = self._state(meter_id)
        state.counters["reads"] += 1
        now = self._clock()
        if now < state.retry_at:
            state.counters["skipped_backoff"] += 1
            raise DeviceTimeout(f"meter {meter_id}: in backoff for {state.retry_at - now:.1f} s")
        plan = plan_for(profile)
        gap = max(float(profile.inter_request_gap_s), self.spec.inter_request_gap_s)
        try:
            responses = [await self._request(meter_id, state, address, req, timeout_s, gap)
                         for req in plan.requests]
        except PortUnavailable as exc:
            self._port_down(exc)  # the bus, not the meter: no meter backoff, retried next read
            raise
        except DriverError as exc:
            self._failed(meter_id, state, exc)
            raise
        self._port_was_down = False
        self._succeeded(meter_id, state)
        return self._samples(meter_id, state, profile, plan.slots, responses, ct_ratio, vt_ratio)

    def _samples(self, meter_id: str, state: _MeterState, profile: Profile, slots: tuple,
                 responses: list, ct: Decimal, vt: Decimal) -> list[Sample]:
        """The meter's values; a quantity not available or out of range is left out (and
        reported), the others are kept: one bad register must not cost the whole reading."""
        samples: list[Sample] = []
        missing: dict[str, dict[str, str]] = {}
        for reg, reg_slots in zip(profile.registers, slots, strict=True):
            words = [responses[s.request][s.offset:s.offset + s.words] for s in reg_slots]
            try:
                value = decode_register(reg, words)
                if value is not None:
                    value = apply_ratio(value, reg.ratio, ct, vt)
            except FrameError as exc:
                state.counters["values_out_of_range"] += 1
                missing[reg.quantity] = {"reason": "out_of_range", "raw": _hex(words),
                                         "error": str(exc)}
                continue
            if value is None:
                state.counters["values_absent"] += 1
                missing[reg.quantity] = {"reason": "not_available", "raw": _hex(words)}
                continue
            samples.append(Sample(reg.quantity, value, reg.unit))
        state.counters["values"] += len(samples)
        self._report_missing(meter_id, state, missing)
        return samples

    def _report_missing(self, meter_id: str, state: _MeterState,
                        missing: dict[str, dict[str, str]]) -> None:
        """One event per meter when quantities go missing, none while they stay missing."""
        new = {q: why for q, why in missing.items() if q not in state.missing}
        back = state.missing - missing.keys()
        state.missing = frozenset(missing)
        if back:
            LOGGER.info("modbus_value_available", extra={"meter": meter_id, "bus": self.name,
                                                         "quantities": sorted(back)})
        if not new:
            return
        bad = any(why["reason"] == "out_of_range" for why in new.values())
        LOGGER.log(logging.WARNING if bad else logging.INFO, NOT_AVAILABLE_EVENT,
                   extra={"meter": meter_id, "bus": self.name, "quantities": new})
        if self._on_event is not None:
            self._on_event(NOT_AVAILABLE_EVENT, meter_id, {"quantities": new},
                           "warning" if bad else "info")

    async def _request(self, meter_id: str, state: _MeterState, address: int, req: ReadRequest,
                       timeout_s: float, gap: float) -> list[int]:
        last: DriverError | None = None
        for attempt in range(ATTEMPTS_PER_REQUEST):
            if attempt:
                state.counters["retries"] += 1
            state.counters["requests"] += 1
            try:
                return await self._exchange(meter_id, address, req, timeout_s, gap)
            except PortUnavailable:
                state.counters["port_unavailable"] += 1
                raise
            except DeviceRejected:
                state.counters["exception"] += 1
                raise  # the meter said no; asking again gives the same answer
            except (DeviceTimeout, FrameError) as exc:
                state.counters[getattr(exc, "counter", "garbage")] += 1
                last = exc
        assert last is not None
        raise last

    async def _exchange(self, meter_id: str, address: int, req: ReadRequest, timeout_s: float,
                        gap: float) -> list[int]:
        where = f"meter {meter_id}: slave {address} FC{req.function} at {req.address}"
        pdu = await self._exchange_pdu(meter_id, address, read_pdu(req), timeout_s, gap, where)
        return registers_of(pdu, req, where)

    async def _exchange_pdu(self, meter_id: str, address: int, pdu: bytes, timeout_s: float,
                            gap: float, where: str) -> bytes:
        """One request PDU and its answer's PDU, under the bus lock and after the gap."""
        async with self._lock:
            stream = await self._connected()
            wait = self._last_io + gap - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            stream.meter = meter_id  # the wire trace names the meter the bytes are about
            try:
                if isinstance(self.spec, TcpBusSpec) and self.spec.mbap:
                    return await self._tcp.exchange_pdu(stream, address, pdu, timeout_s, where)
                return await exchange_rtu_pdu(stream, address, pdu, timeout_s, where)
            finally:
                stream.meter = None
                self._last_io = time.monotonic()

    async def write_registers(self, meter_id: str, address: int, req: WriteRequest, *,
                              timeout_s: float, gap: float = 0.0) -> None:
        """One FC6 / FC16 write between the polls, its echo checked; no retry (the caller reads
        back). Raises DeviceRejected (an exception code), DeviceTimeout, FrameError or
        PortUnavailable as received."""
        where = f"meter {meter_id}: slave {address} FC{req.function} at {req.address}"
        answer = await self._exchange_pdu(meter_id, address, write_pdu(req), timeout_s,
                                          max(gap, self.spec.inter_request_gap_s), where)
        check_echo(answer, req, where)
        LOGGER.info("modbus_registers_written", extra={"meter": meter_id, "bus": self.name,
                                                       "address": req.address,
                                                       "words": len(req.words)})

    def _port_down(self, exc: PortUnavailable) -> None:
        if self._port_was_down:
            LOGGER.debug("modbus_port_unavailable", extra={"bus": self.name, "error": str(exc)})
        else:
            self._port_was_down = True
            LOGGER.warning("modbus_port_unavailable", extra={"bus": self.name, "error": str(exc)})

    def _failed(self, meter_id: str, state: _MeterState, exc: DriverError) -> None:
        state.failures += 1
        delay = min(BACKOFF_FIRST_S * 2 ** (state.failures - 1), BACKOFF_MAX_S)
        state.retry_at = self._clock() + delay
        extra = {"meter": meter_id, "bus": self.name, "error": str(exc), "backoff_s": delay,
                 "kind": type(exc).__name__}
        if state.warned:
            LOGGER.debug("modbus_meter_failed", extra=extra)
        else:
            state.warned = True
            LOGGER.warning("modbus_meter_failed", extra=extra)

    def _succeeded(self, meter_id: str, state: _MeterState) -> None:
        if state.failures:
            LOGGER.info("modbus_meter_recovered", extra={"meter": meter_id, "bus": self.name})
        state.failures, state.retry_at, state.warned = 0, 0.0, False
        state.counters["reads_ok"] += 1

    async def read_registers(self, address: int, req: ReadRequest, timeout_s: float) -> list[int]:
        """The words of one raw read (a technician's look at an unknown register map),
        between the polls; raises DeviceTimeout, FrameError or DeviceRejected as received."""
        return await self._exchange("console", address, req, timeout_s,
                                    self.spec.inter_request_gap_s)

    async def scan(self, addresses: Iterable[int], timeout_s: float) -> list[int]:
        """Slave ids that answer anything (a register or a Modbus exception)."""
        found = []
        probe = ReadRequest(3, SCAN_REGISTER, 1)
        gap = self.spec.inter_request_gap_s
        for address in addresses:
            try:
                await self._exchange("scan", address, probe, timeout_s, gap)
            except DeviceRejected:
                found.append(address)
            except (DeviceTimeout, FrameError):
                continue
            else:
                found.append(address)
        return found


def _hex(words_of: Sequence[Sequence[int]]) -> str:
    """The registers as received, for the event: what the meter really sent."""
    return "".join(f"{word:04x}" for words in words_of for word in words)
