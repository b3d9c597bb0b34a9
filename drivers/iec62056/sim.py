"""A simulated IEC 62056-21 meter bus (and a DSMR P1 port) on the transport kit's pty harness.

The simulator serves the harness's device side from a thread; the gateway opens the gateway-side
path like a real serial port. The harness reports the gateway side's current baud rate, so the
meter knows whether the gateway really switched: a meter sending at a rate the gateway does not
listen at produces garbage, as on a real line. Faults model what technicians meet in the field;
the harness adds the line's own (`sim.link`: unplug, silence, garbage...).

Run `python -m drivers.iec62056.sim --readout FIXTURE` for a standalone meter; it prints one JSON
line with the port path and serves until interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import select
import signal
import sys
import termios
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from drivers.errors import FrameError
from drivers.iec62056.datasets import DataSet, format_block
from drivers.iec62056.framing import (
    ACK,
    CRLF,
    INITIAL_BAUD,
    MODE_C_BAUD,
    NAK,
    SOH,
    Identification,
    build_command,
    build_data_frame,
    frame_command,
)
from drivers.iec62056.readout import decode_message
from drivers.transport.simthread import DeviceThread
from drivers.transport.stream import line_time_s

LOGGER = logging.getLogger(__name__)

# The standard's reaction time tr is 200..1500 ms; 300 ms leaves the gateway time to switch.
SIM_REACTION_S: Final = 0.3
# A mode C meter drops back to idle when no acknowledgement follows the identification.
ACK_WAIT_S: Final = 2.0
# A meter in programming mode leaves it after this long without a command.
PROGRAMMING_IDLE_S: Final = 5.0
POLL_S: Final = 0.05  # how often the serving thread checks for stop
FAULTS: Final = frozenset({"silent", "bad_bcc", "torn", "stuck_300"})


@dataclass
class SimMeter:
    """One meter on the simulated line: identification, readout data and misbehaviour."""

    identification: Identification
    datasets: list[DataSet]
    address: str = ""
    password: str | None = None
    serial: str = "12345678"
    faults: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        unknown = self.faults - FAULTS
        if unknown:
            raise ValueError(f"unknown simulator faults {sorted(unknown)}; known: {sorted(FAULTS)}")

    def readout_frame(self) -> bytes:
        frame = build_data_frame(format_block(self.datasets).encode("latin-1") + b"!" + CRLF)
        if "bad_bcc" in self.faults:
            frame = frame[:-1] + bytes([frame[-1] ^ 0x01])
        if "torn" in self.faults:
            frame = frame[: len(frame) // 2]
        return frame

    def register(self, address: str) -> DataSet | None:
        return next((s for s in self.datasets if s.address == address), None)


def meter_from_fixture(path: str | Path, index: int = 0, **kwargs: object) -> SimMeter:
    """A SimMeter from a raw readout file, or from entry `index` of a corpus readouts.json."""
    path = Path(path)
    if path.suffix == ".json":
        entry = json.loads(path.read_text())[index]
        raw = (entry["ident_line"] + entry["readout_text"]).encode("latin-1")
    else:
        raw = path.read_bytes()
    readout = decode_message(raw)
    if readout.identification is None:
        raise FrameError(f"{path}: fixture has no identification line")
    return SimMeter(readout.identification, list(readout.datasets), **kwargs)  # type: ignore[arg-type]


def _message_end(buf: bytes) -> int | None:
    """The gateway sends lines (`/?..!`, ACK option select) and SOH ... ETX BCC commands."""
    if buf[:1] == bytes([SOH]):
        etx = buf.find(b"\x03")
        return etx + 2 if 0 <= etx < len(buf) - 1 else None
    end = buf.find(b"\n")
    return None if end < 0 else end + 1


class MeterSim(DeviceThread):
    """Meters sharing one simulated line; use as a context manager, open `port_path`."""

    def __init__(self, meters: list[SimMeter], *, echo: bool = False) -> None:
        super().__init__("iec62056-sim")
        self.meters = meters
        self.echo = echo
        self.sign_ons: list[str] = []  # addresses of requests seen, for tests
        self.data_bauds: list[int] = []  # the gateway's baud rate whenever the meter sent data

    def gateway_baud(self) -> int:
        return _baud_of(self.link.gateway_speed())

    def _read_message(self, timeout_s: float) -> bytes | None:
        waited = 0.0
        while not self._stop.is_set() and waited < timeout_s:
            end = _message_end(bytes(self._buffer))
            if end is not None:
                message = bytes(self._buffer[:end])
                del self._buffer[:end]
                return message
            ready, _, _ = select.select([self._fd], [], [], POLL_S)
            waited += POLL_S
            if ready:
                with contextlib.suppress(BlockingIOError):
                    chunk = os.read(self._fd, 4096)
                    if self.echo:
                        os.write(self._fd, chunk)
                    self._buffer.extend(chunk)
        return None

    def _react(self, received: bytes) -> bool:
        """Wait until `received` would have fully arrived, plus the reaction time."""
        delay = line_time_s(len(received), self.gateway_baud() or INITIAL_BAUD) + SIM_REACTION_S
        return not self._stop.wait(delay)

    def _send(self, data: bytes, meter_baud: int) -> None:
        gateway_baud = self.gateway_baud()
        self.data_bauds.append(gateway_baud)
        if gateway_baud != meter_baud:
            # Received at the wrong rate, characters turn into framing-error garbage.
            data = bytes(0xFF ^ b for b in data[: max(1, len(data) // 4)])
        os.write(self._fd, data)

    def _serve(self) -> None:
        while not self._stop.is_set():
            message = self._read_message(POLL_S * 4)
            if message is None or not message.startswith(b"/?"):
                continue
            address = message[2:].split(b"!")[0].decode("latin-1")
            self.sign_ons.append(address)
            meter = self._addressed(address)
            if meter is None or "silent" in meter.faults or self.gateway_baud() != INITIAL_BAUD:
                continue
            try:
                self._serve_meter(meter, message)
            except (FrameError, OSError) as exc:
                LOGGER.debug("sim_meter_error", extra={"meter": meter.address, "error": str(exc)})
            self._buffer.clear()

    def _addressed(self, address: str) -> SimMeter | None:
        if not address:
            return self.meters[0] if len(self.meters) == 1 else None
        return next((m for m in self.meters if m.address == address), None)

    def _serve_meter(self, meter: SimMeter, request: bytes) -> None:
        if not self._react(request):
            return
        ident = meter.identification
        self._send(ident.to_bytes(), INITIAL_BAUD)
        if ident.mode_b_baud is not None:
            rate = INITIAL_BAUD if "stuck_300" in meter.faults else ident.mode_b_baud
            if self._react(b""):
                self._send(meter.readout_frame(), rate)
            return
        if ident.mode_c_baud is None:  # mode A: the readout follows at 300 baud
            if self._react(b""):
                self._send(meter.readout_frame(), INITIAL_BAUD)
            return
        ack = self._read_message(ACK_WAIT_S)
        if ack is None or ack[:1] != bytes([ACK]) or len(ack) < 6:
            return
        offered_char, mode_char = chr(ack[2]), chr(ack[3])
        rate = MODE_C_BAUD.get(offered_char, INITIAL_BAUD)
        if "stuck_300" in meter.faults or rate > ident.mode_c_baud:
            rate = INITIAL_BAUD
        if not self._react(ack):
            return
        if mode_char == "1":
            self._programming(meter, rate)
        else:
            self._send(meter.readout_frame(), rate)

    def _programming(self, meter: SimMeter, rate: int) -> None:
        self._send(build_command("P0", f"({meter.serial})"), rate)
        logged_in = meter.password is None
        while (message := self._read_message(PROGRAMMING_IDLE_S)) is not None:
            try:
                command, data = frame_command(message)
            except FrameError:
                self._send(bytes([NAK]), rate)
                continue
            if command == "B0":
                return
            if not self._react(message):
                return
            if command == "P1":
                logged_in = data == f"({meter.password})"
                self._send(bytes([ACK if logged_in else NAK]), rate)
            elif command in ("R1", "R5"):
                found = meter.register((data or "").removesuffix("()")) if logged_in else None
                text = found.to_text() if found is not None else "(ERROR)"
                self._send(build_data_frame(text.encode("latin-1")), rate)
            else:
                self._send(bytes([NAK]), rate)


class P1Sim(DeviceThread):
    """A DSMR P1 port: pushes the given telegrams one after the other, every `interval_s`."""

    def __init__(self, telegrams: list[bytes], interval_s: float = 1.0) -> None:
        super().__init__("p1-sim")
        self.telegrams = telegrams
        self.interval_s = interval_s

    def _serve(self) -> None:
        index = 0
        while not self._stop.wait(self.interval_s):
            os.write(self._fd, self.telegrams[index % len(self.telegrams)])
            index += 1


def _baud_of(speed: int | None) -> int:
    """The baud rate of a termios speed constant (0 for none or an unusual one)."""
    return next((b for b in MODE_C_BAUD.values() if getattr(termios, f"B{b}") == speed), 0)


def _telegrams_from_fixture(path: str) -> list[bytes]:
    entries = json.loads(Path(path).read_text())
    return [e["telegram"].encode("latin-1") for e in entries]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drivers.iec62056.sim", description=__doc__)
    parser.add_argument("--readout", action="append", default=[], metavar="FIXTURE[:INDEX]",
                        help="raw readout file, or corpus readouts.json with an entry index")
    parser.add_argument("--address", action="append", default=[],
                        help="device address of the n-th --readout meter (default: any)")
    parser.add_argument("--fault", action="append", default=[], choices=sorted(FAULTS))
    parser.add_argument("--password", default=None)
    parser.add_argument("--echo", action="store_true", help="echo like a half-duplex probe")
    parser.add_argument("--telegrams", metavar="JSON", help="DSMR: push the telegrams of a file")
    parser.add_argument("--interval", type=float, default=1.0, help="DSMR push interval (s)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sim: MeterSim | P1Sim
    if args.telegrams:
        sim = P1Sim(_telegrams_from_fixture(args.telegrams), args.interval)
    else:
        meters = []
        for n, spec in enumerate(args.readout):
            path, _, index = spec.partition(":")
            address = args.address[n] if n < len(args.address) else ""
            meters.append(meter_from_fixture(path, int(index or 0), address=address,
                                             password=args.password, faults=set(args.fault)))
        if not meters:
            parser.error("give --readout FIXTURE or --telegrams JSON")
        sim = MeterSim(meters, echo=args.echo)
    with sim:
        sys.stdout.write(json.dumps({"port": sim.port_path, "pid": os.getpid()}) + "\n")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
