"""Async Modbus master on pymodbus: one request at a time per bus, retries, per-meter backoff."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from drivers.errors import (
    ChecksumError,
    DeviceRejected,
    DeviceTimeout,
    DriverError,
    FrameError,
    PortUnavailable,
)
from drivers.modbus.decode import apply_ratio, decode_register
from drivers.modbus.plan import ReadRequest, plan_for
from drivers.modbus.profiles import Profile
from drivers.modbus.rtu import RxFault, classify_rx
from drivers.readings import Sample

LOGGER = logging.getLogger(__name__)

ATTEMPTS_PER_REQUEST: Final[int] = 2  # one retry: a lone CRC hit is common on long RS-485 runs
BACKOFF_FIRST_S: Final[float] = 2.0  # a meter that just failed is retried on the next cycle-ish
BACKOFF_MAX_S: Final[float] = 300.0  # a dead meter is still probed every five minutes
CONNECT_TIMEOUT_S: Final[float] = 3.0  # opening a serial port or TCP socket; longer means dead
CLIENT_TIMEOUT_S: Final[float] = 60.0  # pymodbus's own wait; ours (asyncio.timeout) fires first
SCAN_REGISTER: Final[int] = 0  # any answer, even an exception, proves a slave is there
PYMODBUS_LOG_LEVEL: Final[int] = logging.CRITICAL  # pymodbus logs every hiccup at error level

_COUNTER_NAMES: Final[tuple[str, ...]] = (
    "reads", "reads_ok", "requests", "retries", "timeout", "crc", "wrong_slave", "half_frame",
    "garbage", "exception", "port_unavailable", "skipped_backoff", "values", "values_absent",
    "values_out_of_range",
)
# An event sink like the service's record_event: (kind, meter id, data, severity).
EventHook = Callable[[str, str | None, dict[str, Any], str], None]
NOT_AVAILABLE_EVENT: Final[str] = "modbus_value_not_available"
_FAULT_COUNTER: Final[dict[RxFault, str]] = {
    RxFault.NOTHING: "timeout", RxFault.CRC: "crc", RxFault.WRONG_SLAVE: "wrong_slave",
    RxFault.TRUNCATED: "half_frame", RxFault.GARBAGE: "garbage",
}


@dataclass(frozen=True, slots=True)
class SerialBusSpec:
    port: str
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1
    inter_request_gap_s: float = 0.0


@dataclass(frozen=True, slots=True)
class TcpBusSpec:
    host: str
    port: int = 502
    inter_request_gap_s: float = 0.0


@dataclass
class _MeterState:
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTER_NAMES, 0))
    failures: int = 0
    retry_at: float = 0.0
    warned: bool = False
    # quantities missing from the last good read: an event only when one goes missing anew
    missing: frozenset[str] = frozenset()


class _RxWatch:
    """Keeps the bytes pymodbus received for the request in flight (it hides bad frames)."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen = b""

    def __call__(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            # pymodbus hands over its whole receive buffer; after a discarded frame it restarts
            self.seen = data if data.startswith(self.seen) else self.seen + data
        return data


class ModbusBus:
    """One RS-485 line or TCP gateway; read meters on it one request at a time."""

    def __init__(
        self, spec: SerialBusSpec | TcpBusSpec, *, clock: Callable[[], float] = time.monotonic,
        on_event: EventHook | None = None,
    ) -> None:
        """`clock` drives the backoff only (tests step it); gaps and timeouts use real time.
        `on_event` receives the per-meter events (a quantity not available or out of range)."""
        self._clock = clock
        self._on_event = on_event
        logging.getLogger("pymodbus").setLevel(PYMODBUS_LOG_LEVEL)
        self.spec = spec
        self._lock = asyncio.Lock()
        self._meters: dict[str, _MeterState] = {}
        self._watch = _RxWatch()
        self._client: AsyncModbusSerialClient | AsyncModbusTcpClient | None = None
        self._last_io = 0.0
        self._port_was_down = False
        self.name = spec.port if isinstance(spec, SerialBusSpec) else f"{spec.host}:{spec.port}"

    def counters(self, meter_id: str) -> dict[str, int]:
        """Copy of one meter's counters (all zero for a meter never read)."""
        return dict(self._state(meter_id).counters)

    def _state(self, meter_id: str) -> _MeterState:
        return self._meters.setdefault(meter_id, _MeterState())

    def _new_client(self) -> AsyncModbusSerialClient | AsyncModbusTcpClient:
        # retries=0 and reconnect_delay=0: our retry and reconnect policy is the only one.
        if isinstance(self.spec, SerialBusSpec):
            return AsyncModbusSerialClient(
                self.spec.port, baudrate=self.spec.baudrate, bytesize=self.spec.bytesize,
                parity=self.spec.parity, stopbits=self.spec.stopbits, timeout=CLIENT_TIMEOUT_S,
                retries=0, reconnect_delay=0, trace_packet=self._watch)
        return AsyncModbusTcpClient(self.spec.host, port=self.spec.port, timeout=CLIENT_TIMEOUT_S,
                                    retries=0, reconnect_delay=0, trace_packet=self._watch)

    async def _connected(self) -> AsyncModbusSerialClient | AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        if self._client is not None:
            self._client.close()
            self._client = None
        if isinstance(self.spec, SerialBusSpec) and not os.path.exists(self.spec.port):
            raise PortUnavailable(f"serial port {self.spec.port} does not exist")
        client = self._new_client()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                ok = await client.connect()
        except TimeoutError:
            ok = False
        if not ok:
            client.close()
            raise PortUnavailable(f"cannot open {self.name}")
        LOGGER.info("modbus_bus_connected", extra={"bus": self.name})
        self._client = client
        return client

    async def close(self) -> None:
        async with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

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
        async with self._lock:
            client = await self._connected()
            wait = self._last_io + gap - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._watch.seen = b""
            call = (client.read_holding_registers if req.function == 3
                    else client.read_input_registers)
            try:
                async with asyncio.timeout(timeout_s):
                    response = await call(req.address, count=req.count, device_id=address)
            except (TimeoutError, ModbusException) as exc:
                raise self._rx_error(meter_id, address, req, exc) from None
            finally:
                self._last_io = time.monotonic()
        if response.isError():
            code = getattr(response, "exception_code", None)
            raise DeviceRejected(f"meter {meter_id}: slave {address} answered Modbus exception "
                                 f"{code} to FC{req.function} at {req.address}")
        registers = list(response.registers)
        if len(registers) != req.count:
            raise _counted(FrameError(f"meter {meter_id}: asked {req.count} registers at "
                                      f"{req.address}, got {len(registers)}"), "garbage")
        return registers

    def _rx_error(
        self, meter_id: str, address: int, req: ReadRequest, exc: Exception
    ) -> DriverError:
        if self._client is not None and not self._client.connected:
            return PortUnavailable(f"{self.name}: connection lost ({exc})")
        fault = classify_rx(self._watch.seen, address, req.function)
        where = f"meter {meter_id}: slave {address} FC{req.function} at {req.address}"
        if fault is RxFault.NOTHING:
            error: DriverError = DeviceTimeout(f"{where}: no answer")
        elif fault is RxFault.CRC:
            error = ChecksumError(f"{where}: CRC mismatch", offset=len(self._watch.seen) - 2)
        else:
            error = FrameError(f"{where}: {fault.value} ({self._watch.seen[:16].hex()})", offset=0)
        return _counted(error, _FAULT_COUNTER[fault])

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


def _counted(error: DriverError, counter: str) -> DriverError:
    error.counter = counter  # type: ignore[attr-defined]
    return error
