"""Simulated Modbus meters: a pymodbus server over a pty link (RTU) or TCP, with misbehaviour."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import json
import logging
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.errors import FrameError
from drivers.modbus.decode import decode_register, encode_register
from drivers.modbus.profiles import Profile, Register, get_profile
from drivers.modbus.rtu import response_length, with_crc
from drivers.modbus.sim_model import LoadModel, to_decimal
from drivers.modbus.sim_write import accept_write, data_ranges, initial_words, overlay
from drivers.modbus.writable import HOLDING
from drivers.modbus.write import WRITE_MULTIPLE
from drivers.transport.sim import Direction, PtyLink

LOGGER = logging.getLogger(__name__)

RECORD_LIMIT: Final[int] = 100_000  # snapshots kept in memory; a long bench run must not grow
REQUEST_LEN: Final[int] = 8  # FC3/FC4/FC6 request: address, function, 4 bytes, CRC (2)
REQUEST_FUNCTIONS: Final[frozenset[int]] = frozenset({3, 4, 6, WRITE_MULTIPLE})
SERVER_TIMEOUT_S: Final[float] = 1.0  # pymodbus serial server inter-byte patience
# rtu_tcp: RTU frames over a raw TCP socket, as a serial device server (Moxa NPort) passes them
TRANSPORTS: Final[tuple[str, ...]] = ("rtu", "tcp", "rtu_tcp")
ADDRESS_SPACE: Final[int] = 0x10000  # every register address, for the silent catch-all id 0


class Misbehaviour(enum.Enum):
    """What a simulated slave does wrong; switchable at runtime."""

    NONE = "none"
    SILENCE = "silence"
    GARBAGE = "garbage"  # RTU only
    WRONG_SLAVE = "wrong_slave"  # RTU only
    CRC_ERROR = "crc_error"  # RTU only
    HALF_FRAME = "half_frame"  # RTU only
    EXCEPTION = "exception"
    IGNORE_WRITES = "ignore_writes"  # echoes a write and keeps the old value (no read-back)


@dataclass(frozen=True, slots=True)
class SlaveSpec:
    address: int
    profile: str
    seed: int = 0
    peak_current_a: float | None = None


@dataclass
class SimulatedSlave:
    """One meter on the bus: its profile, load model, and current misbehaviour."""

    address: int
    profile: Profile
    model: LoadModel
    misbehaviour: Misbehaviour = Misbehaviour.NONE
    last_served: dict[str, str] = field(default_factory=dict)
    forced: dict[str, list[list[int]]] = field(default_factory=dict)  # quantity -> raw words
    held: dict[int, int] = field(default_factory=dict)  # written holding registers: address -> word

    @property
    def single_phase(self) -> bool:
        return "voltage" in self.profile.quantities


@dataclass(frozen=True, slots=True)
class Pace:
    """A real line's timing: a read takes its request and answer frames at `baudrate`
    (11 bits a byte, RTU) plus the meter's turnaround, so a bench site is one real buses allow."""

    baudrate: int
    turnaround_s: float

    def answer_s(self, registers: int) -> float:
        frame_bytes = 8 + 5 + 2 * registers  # read request; answer header, data and CRC
        return frame_bytes * 11 / self.baudrate + self.turnaround_s

    @classmethod
    def from_spec(cls, bus: dict[str, Any]) -> Pace | None:
        """`baudrate` (and `turnaround_ms`) in a bus spec pace it; absent: answers at once."""
        if bus.get("baudrate") is None:
            return None
        return cls(int(bus["baudrate"]), float(bus.get("turnaround_ms", 0)) / 1000)


class SimulatedBus:
    """A bus of simulated slaves; `async with SimulatedBus(...) as bus:` then point a master at
    `bus.gateway_path` (RTU) or `bus.host`/`bus.tcp_port` (TCP)."""

    def __init__(
        self, slaves: Iterable[SlaveSpec], *, transport: str = "rtu",
        link_name: str | Path | None = None, host: str = "127.0.0.1", tcp_port: int = 0,
        record_file: IO[str] | None = None, clock: Callable[[], float] = time.time,
        name: str = "", pace: Pace | None = None,
    ) -> None:
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # chatty at info level
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, got {transport!r}")
        self.transport = transport
        self.name = name  # tags the record, so one record file can serve several buses
        self.slaves: dict[int, SimulatedSlave] = {}
        for spec in slaves:
            model = LoadModel.from_seed(spec.seed * 7919 + spec.address, spec.peak_current_a)
            profile = get_profile(spec.profile)
            self.slaves[spec.address] = SimulatedSlave(spec.address, profile, model,
                                                       held=initial_words(profile))
        self.records: deque[dict[str, Any]] = deque(maxlen=RECORD_LIMIT)
        self.host, self.tcp_port = host, tcp_port
        self.link: PtyLink | None = PtyLink(link_name) if transport == "rtu" else None
        self._record_file = record_file
        self._clock = clock
        self._server: ModbusSerialServer | ModbusTcpServer | None = None
        self._closing = asyncio.Event()
        self._rx_to_device = b""
        self._rx_to_gateway = b""
        self._pace = pace

    @property
    def gateway_path(self) -> str:
        if self.link is None:
            raise RuntimeError("a TCP bus has no serial path")
        return self.link.gateway_path

    def set_misbehaviour(self, address: int, misbehaviour: Misbehaviour) -> None:
        self.slaves[address].misbehaviour = misbehaviour

    def force_words(self, address: int, quantity: str, words: list[list[int]] | None) -> None:
        """Serve these raw words (one list per span) for a quantity instead of the model's value,
        e.g. the FLT_MAX "not available" filler; None goes back to the model."""
        if words is None:
            self.slaves[address].forced.pop(quantity, None)
        else:
            self.slaves[address].forced[quantity] = words

    def served(self, address: int) -> dict[str, str]:
        """The exact decimal strings last served per quantity for one slave."""
        return dict(self.slaves[address].last_served)

    async def __aenter__(self) -> SimulatedBus:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        devices = [self._device(slave) for slave in self.slaves.values()]
        if self.link is not None:
            await self.link.start()
            self.link.set_filter(Direction.TO_DEVICE, self._filter_requests)
            self.link.set_filter(Direction.TO_GATEWAY, self._filter_responses)
            self._server = ModbusSerialServer(
                devices, port=self.link.device_path, timeout=SERVER_TIMEOUT_S, baudrate=115200)
        else:
            # id 0 answers for every unknown id: silence, like an empty RS-485 address.
            everything = SimData(0, count=ADDRESS_SPACE, datatype=DataType.REGISTERS)
            devices.append(SimDevice(0, simdata=[everything], action=self._silent))
            framer = FramerType.RTU if self.transport == "rtu_tcp" else FramerType.SOCKET
            self._server = ModbusTcpServer(devices, address=(self.host, self.tcp_port),
                                           framer=framer)
        await self._server.serve_forever(background=True)
        if self.link is None:
            self.tcp_port = self._bound_port()

    def _bound_port(self) -> int:
        transport = getattr(self._server, "transport", None)
        sockets = getattr(getattr(transport, "_server", None), "sockets", None) or []
        if not sockets and transport is not None:
            sockets = getattr(transport, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else self.tcp_port

    async def stop(self) -> None:
        self._closing.set()
        if self._server is not None:
            await self._server.shutdown()
            self._server = None
        if self.link is not None:
            await self.link.stop()

    def _device(self, slave: SimulatedSlave) -> SimDevice:
        simdata = [SimData(first, count=count, values=0, datatype=DataType.REGISTERS)
                   for first, count in data_ranges(slave.profile)]

        async def action(function: int, start: int, address: int, count: int,
                         registers: list[int], set_values: Any) -> ExcCodes | None:
            if set_values is not None:
                return self._write(slave, start, address, registers, set_values)
            return await self._serve(slave, function, start, address, count, registers)

        return SimDevice(slave.address, simdata=simdata, action=action)

    async def _silent(self, *args: Any) -> ExcCodes | None:
        await self._closing.wait()
        return ExcCodes.DEVICE_BUSY

    def _write(self, slave: SimulatedSlave, start: int, address: int, registers: list[int],
               values: list[int]) -> ExcCodes | None:
        if slave.misbehaviour is Misbehaviour.EXCEPTION:
            return ExcCodes.DEVICE_FAILURE
        keep = slave.misbehaviour is not Misbehaviour.IGNORE_WRITES
        refused = accept_write(slave.profile, slave.held, address, list(values), keep)
        if refused is None and not keep:  # the server stores what set_values says: the old
            values[:] = registers[address - start:address - start + len(values)]
        self._record({"ts": self._clock(), "bus": self.name, "slave": slave.address,
                      "written": {"address": address, "words": list(values),
                                  "refused": None if refused is None else refused.name}})
        return refused

    async def _serve(self, slave: SimulatedSlave, function: int, start: int, address: int,
                     count: int, registers: list[int]) -> ExcCodes | None:
        if slave.misbehaviour is Misbehaviour.EXCEPTION:
            return ExcCodes.DEVICE_FAILURE
        if slave.misbehaviour is Misbehaviour.SILENCE:
            return await self._silent()
        if self._pace is not None:  # a real meter answers no faster than its line allows
            await asyncio.sleep(self._pace.answer_s(count))
        now = self._clock()
        values = slave.model.values(now, slave.single_phase)
        served: dict[str, str] = {}
        for reg in slave.profile.registers:
            if not any(address <= s.address < address + count and s.function == function
                       for s in reg.spans):
                continue
            words_of = slave.forced.get(reg.quantity) or \
                encode_register(reg, to_decimal(values[reg.quantity]), rounding=True)
            for span, words in zip(reg.spans, words_of, strict=True):
                registers[span.address - start: span.address - start + span.words] = words
            served[reg.quantity] = _served_text(reg, words_of)
        if function == HOLDING:
            overlay(slave.held, start, address, count, registers)
        slave.last_served.update(served)
        for quantity in [q for q, text in slave.last_served.items() if text == ""]:
            del slave.last_served[quantity]  # not available: a master stores nothing for it
        self._record({"ts": now, "bus": self.name, "slave": slave.address, "values": served})
        return None

    def _record(self, entry: dict[str, Any]) -> None:
        self.records.append(entry)
        if self._record_file is not None:
            self._record_file.write(json.dumps(entry) + "\n")
            self._record_file.flush()

    def _filter_requests(self, chunk: bytes) -> bytes:
        """Drop requests to absent or silenced slaves before the server sees them."""
        buffer = self._rx_to_device + chunk
        out = bytearray()
        while (length := _request_length(buffer)) is not None and len(buffer) >= length:
            frame, buffer = buffer[:length], buffer[length:]
            slave = self.slaves.get(frame[0])
            if slave is not None and slave.misbehaviour is not Misbehaviour.SILENCE:
                out += frame
        if len(buffer) >= 2 and buffer[1] not in REQUEST_FUNCTIONS:
            out += buffer  # not a request we know: pass through untouched
            buffer = b""
        self._rx_to_device = buffer
        return bytes(out)

    def _filter_responses(self, chunk: bytes) -> bytes:
        """Garble whole responses of misbehaving slaves (the server always answers correctly)."""
        buffer = self._rx_to_gateway + chunk
        out = bytearray()
        while (length := response_length(buffer)) is not None and len(buffer) >= length:
            frame, buffer = buffer[:length], buffer[length:]
            out += self._garble(frame)
        self._rx_to_gateway = buffer
        return bytes(out)

    def _garble(self, frame: bytes) -> bytes:
        slave = self.slaves.get(frame[0])
        bad = slave.misbehaviour if slave is not None else Misbehaviour.NONE
        if bad is Misbehaviour.CRC_ERROR:
            return frame[:-1] + bytes([frame[-1] ^ 0x5A])
        if bad is Misbehaviour.WRONG_SLAVE:
            return with_crc(bytes([frame[0] % 247 + 1]) + frame[1:-2])
        if bad is Misbehaviour.HALF_FRAME:
            return frame[: len(frame) // 2]
        if bad is Misbehaviour.GARBAGE:
            return bytes((b * 37 + 11) & 0xFF for b in frame)
        return frame


def _request_length(buffer: bytes) -> int | None:
    """Length of the FC3 / FC4 / FC6 / FC16 request starting the buffer (None: not yet known)."""
    if len(buffer) < 2 or buffer[1] not in REQUEST_FUNCTIONS:
        return None
    if buffer[1] != WRITE_MULTIPLE:
        return REQUEST_LEN
    return 9 + buffer[6] if len(buffer) >= 7 else None


def _served_text(reg: Register, words_of: list[list[int]]) -> str:
    """The exact value a master must decode from these words; "" when it must store none."""
    try:
        value = decode_register(reg, words_of)
    except FrameError:
        return ""
    return "" if value is None else str(value)


def _slave_specs(bus: dict[str, Any], where: str) -> list[SlaveSpec]:
    specs = []
    for index, raw in enumerate(bus.get("slaves", [])):
        if "addresses" in raw:
            first, last = raw["addresses"]
            addresses = range(int(first), int(last) + 1)
        else:
            addresses = range(int(raw["address"]), int(raw["address"]) + 1)
        if raw.get("profile") is None:
            raise ValueError(f"{where}.slaves[{index}]: key 'profile' missing")
        peak = raw.get("peak_current_a")
        specs += [SlaveSpec(a, raw["profile"], int(raw.get("seed", 0)),
                            None if peak is None else float(peak)) for a in addresses]
    return specs


def buses_from_spec(spec: dict[str, Any], record_file: IO[str] | None) -> list[SimulatedBus]:
    """SimulatedBus objects for a spec document (see docs/modbus.md, 'Simulator spec')."""
    buses = []
    for index, bus in enumerate(spec.get("buses", [])):
        where = f"buses[{index}]"
        transport = bus.get("transport", "rtu")
        link = None
        if transport == "rtu":
            pty_dir = Path(bus.get("pty_dir", "."))
            pty_dir.mkdir(parents=True, exist_ok=True)
            link = pty_dir / bus.get("link_name", f"ttySIM{index}")
        buses.append(SimulatedBus(
            _slave_specs(bus, where), transport=transport, link_name=link,
            host=bus.get("host", "127.0.0.1"), tcp_port=int(bus.get("port", 0)),
            record_file=record_file, name=str(bus.get("name", f"bus{index}")),
            pace=Pace.from_spec(bus)))
    return buses


def _opened(spec: dict[str, Any], buses: list[SimulatedBus]) -> dict[str, Any]:
    out = []
    for index, bus in enumerate(buses):
        name = spec["buses"][index].get("name", f"bus{index}")
        entry: dict[str, Any] = {"name": name, "transport": bus.transport,
                                 "slaves": sorted(bus.slaves)}
        if bus.link is not None:
            entry["path"] = bus.gateway_path
        else:
            entry.update(host=bus.host, port=bus.tcp_port)
        out.append(entry)
    return {"buses": out}


async def serve(spec: dict[str, Any]) -> None:
    """Open every bus of the spec, print one JSON line saying where, serve until SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    record = spec.get("record")
    with contextlib.ExitStack() as files:
        record_file = files.enter_context(open(record, "a", encoding="utf-8")) if record else None
        buses = buses_from_spec(spec, record_file)
        async with contextlib.AsyncExitStack() as stack:
            for bus in buses:
                await stack.enter_async_context(bus)
            sys.stdout.write(json.dumps(_opened(spec, buses)) + "\n")
            sys.stdout.flush()
            await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drivers.modbus.sim",
                                     description="Serve simulated Modbus meters.")
    parser.add_argument("--spec", required=True, type=Path, help="simulator spec JSON file")
    args = parser.parse_args(argv)
    try:
        spec = json.loads(args.spec.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        parser.error(f"{args.spec}: {exc}")
    asyncio.run(serve(spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
