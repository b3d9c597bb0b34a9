"""Modbus over the transport kit: how a bus is opened, and one read request exchanged over RTU
(the project's CRC and classifier, drivers/modbus/rtu.py) or TCP (MBAP, drivers/modbus/mbap.py).

A link raises our errors only, each tagged with the counter it counts under (`error.counter`):
the master decides about retries and backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from core.errors import MeterGatewayError
from drivers.errors import (
    ChecksumError,
    DeviceRejected,
    DeviceTimeout,
    DriverError,
    FrameError,
    PortUnavailable,
)
from drivers.modbus import mbap
from drivers.modbus.plan import ReadRequest
from drivers.modbus.rtu import RxFault, classify_rx, pdu_frame, rtu_frame_end
from drivers.transport.serial import RtsDirection, SerialStream, take_descriptor
from drivers.transport.stream import ByteStream, LineSettings
from drivers.transport.tcp import TcpStream

LOGGER = logging.getLogger(__name__)

PROTOCOL: Final[str] = "modbus"  # the wire logger: drivers.modbus.wire
CONNECT_TIMEOUT_S: Final[float] = 3.0  # opening a TCP socket; longer means dead
# Between two bytes of one response. Modbus's own 1.5-character rule cannot be kept from user
# space behind a USB adapter (16 ms latency timer) or a loaded pty; 0.2 s still cuts a half
# frame quickly.
INTER_BYTE_TIMEOUT_S: Final[float] = 0.2

FRAMINGS: Final[frozenset[str]] = frozenset({"mbap", "rtu"})

# board/ opens the configured port: a descriptor, or a port object whose descriptor is taken
FdOpener = Callable[[], Any]


@dataclass(frozen=True, slots=True)
class SerialBusSpec:
    port: str
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1
    inter_request_gap_s: float = 0.0
    rts: RtsDirection | None = None  # RS-485 direction by RTS from user space ("rts" mode)


@dataclass(frozen=True, slots=True)
class TcpBusSpec:
    """A Modbus TCP device (`framing="mbap"`), or a serial device server (Moxa NPort, USR)
    passing RTU frames over a raw TCP socket (`framing="rtu"`: CRC, no MBAP header)."""

    host: str
    port: int = 502
    inter_request_gap_s: float = 0.0
    framing: str = "mbap"

    def __post_init__(self) -> None:
        if self.framing not in FRAMINGS:
            raise ValueError(f"framing must be one of {sorted(FRAMINGS)}, got {self.framing!r}")

    @property
    def mbap(self) -> bool:
        return self.framing == "mbap"


def bus_name(spec: SerialBusSpec | TcpBusSpec) -> str:
    if isinstance(spec, SerialBusSpec):
        return spec.port
    return f"{spec.host}:{spec.port}" + ("" if spec.mbap else " (rtu)")


async def open_bus_stream(spec: SerialBusSpec | TcpBusSpec,
                          open_fd: FdOpener | None) -> ByteStream:
    """The stream of one bus: a descriptor from `open_fd` (board/) or a TCP connection."""
    if isinstance(spec, TcpBusSpec):
        return await TcpStream.connect(spec.host, spec.port, protocol=PROTOCOL,
                                       timeout_s=CONNECT_TIMEOUT_S)
    if open_fd is None:
        raise PortUnavailable(f"{spec.port}: no serial opener given (board/ opens ports)")
    try:
        fd = take_descriptor(open_fd())
    except (OSError, MeterGatewayError) as exc:  # board's BoardError: missing, busy, refused
        raise PortUnavailable(f"cannot open {spec.port}: {exc}") from exc
    settings = LineSettings(spec.baudrate, spec.bytesize, spec.parity, spec.stopbits)
    return SerialStream(fd, settings, name=spec.port, protocol=PROTOCOL, rts=spec.rts)


def counted(error: DriverError, counter: str) -> DriverError:
    error.counter = counter  # type: ignore[attr-defined]
    return error


_FAULT_COUNTER: Final[dict[RxFault, str]] = {
    RxFault.NOTHING: "timeout", RxFault.CRC: "crc", RxFault.WRONG_SLAVE: "wrong_slave",
    RxFault.TRUNCATED: "half_frame", RxFault.GARBAGE: "garbage",
}


def fault_error(fault: RxFault, where: str, seen: bytes) -> DriverError:
    if fault is RxFault.NOTHING:
        error: DriverError = DeviceTimeout(f"{where}: no answer")
    elif fault is RxFault.CRC:
        error = ChecksumError(f"{where}: CRC mismatch", offset=len(seen) - 2)
    else:
        error = FrameError(f"{where}: {fault.value} ({seen[:16].hex()})", offset=0)
    return counted(error, _FAULT_COUNTER[fault])


def registers_of(pdu: bytes, req: ReadRequest, where: str) -> list[int]:
    """The words of a read response PDU (function, byte count, data); exceptions raised."""
    if pdu[0] == req.function | 0x80:
        code = pdu[1] if len(pdu) > 1 else None
        raise DeviceRejected(f"{where}: Modbus exception {code}")
    if pdu[0] != req.function or len(pdu) < 2 or pdu[1] != len(pdu) - 2:
        raise counted(FrameError(f"{where}: malformed response ({pdu[:16].hex()})", 0),
                      "garbage")
    if pdu[1] != 2 * req.count:
        raise counted(FrameError(f"{where}: asked {req.count} registers, got {pdu[1] // 2}",
                                 0), "garbage")
    data = pdu[2:]
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]


async def exchange_rtu(stream: ByteStream, slave: int, req: ReadRequest, timeout_s: float,
                       where: str) -> list[int]:
    """One RTU read; the bytes of an unusable answer are classified (CRC, wrong slave...)."""
    pdu = await exchange_rtu_pdu(stream, slave, read_pdu(req), timeout_s, where)
    return registers_of(pdu, req, where)


async def exchange_rtu_pdu(stream: ByteStream, slave: int, pdu: bytes, timeout_s: float,
                           where: str) -> bytes:
    """One RTU request PDU out, the answer's PDU (slave id, CRC and function checked) back."""
    _drop_late(stream, where)
    await stream.write(pdu_frame(slave, pdu))
    try:
        frame = await stream.read_message(rtu_frame_end, timeout_s, INTER_BYTE_TIMEOUT_S,
                                          "response")
    except DeviceTimeout:
        seen = stream.discard_input()
        raise fault_error(classify_rx(seen, slave, pdu[0]), where, seen) from None
    return rtu_pdu(frame, slave, pdu[0], where)


def read_pdu(req: ReadRequest) -> bytes:
    return bytes((req.function,)) + req.address.to_bytes(2, "big") + req.count.to_bytes(2, "big")


def rtu_registers(frame: bytes, slave: int, req: ReadRequest, where: str) -> list[int]:
    """The words of one whole RTU answer (as `rtu_frame_end` cut it), or its fault raised."""
    return registers_of(rtu_pdu(frame, slave, req.function, where), req, where)


def rtu_pdu(frame: bytes, slave: int, function: int, where: str) -> bytes:
    """The PDU of one whole RTU answer to `function`, or its fault raised."""
    fault = classify_rx(frame, slave, function)
    if fault is RxFault.GARBAGE and frame[0] == slave and frame[1] & 0x7F == function:
        return frame[1:-2]  # the classifier found nothing wrong
    raise fault_error(fault, where, frame)


class TcpTransactions:
    """MBAP transaction ids for one connection, and the exchange that checks them."""

    def __init__(self) -> None:
        self._tid = 0

    async def exchange(self, stream: ByteStream, unit: int, req: ReadRequest, timeout_s: float,
                       where: str) -> list[int]:
        pdu = await self.exchange_pdu(stream, unit, read_pdu(req), timeout_s, where)
        return registers_of(pdu, req, where)

    async def exchange_pdu(self, stream: ByteStream, unit: int, pdu: bytes, timeout_s: float,
                           where: str) -> bytes:
        """One request PDU out, the PDU of the answer with our transaction id back."""
        _drop_late(stream, where)
        self._tid = (self._tid + 1) % mbap.TID_MODULO
        await stream.write(mbap.pdu_frame(self._tid, unit, pdu))
        while True:  # an answer to an earlier, timed-out request is skipped by its id
            try:
                frame = await stream.read_message(mbap.mbap_frame_end, timeout_s,
                                                  INTER_BYTE_TIMEOUT_S, "response")
            except DeviceTimeout:
                seen = stream.discard_input()
                fault = RxFault.NOTHING if not seen else RxFault.TRUNCATED
                raise fault_error(fault, where, seen) from None
            except FrameError as exc:
                stream.close()  # out of step: only a new connection finds frame starts again
                raise counted(FrameError(f"{where}: {exc}", 0), "garbage") from None
            tid, got_unit, answer = mbap.split_frame(frame)
            if tid != self._tid:
                LOGGER.debug("modbus_late_answer", extra={"bus": stream.name, "tid": tid})
                continue
            if got_unit != unit:
                raise fault_error(RxFault.WRONG_SLAVE, where, frame)
            return answer


def tcp_registers(frame: bytes, unit: int, req: ReadRequest, where: str) -> list[int]:
    """The words of one whole MBAP answer of our transaction, or its fault raised."""
    _tid, got_unit, pdu = mbap.split_frame(frame)
    if got_unit != unit:
        raise fault_error(RxFault.WRONG_SLAVE, where, frame)
    return registers_of(pdu, req, where)


def _drop_late(stream: ByteStream, where: str) -> None:
    stale = stream.discard_input()
    if stale:  # an answer that came after its timeout must not pass for this request's
        LOGGER.debug("modbus_late_bytes", extra={"bus": stream.name, "where": where,
                                                 "bytes": len(stale)})
