"""The simulated wired M-Bus (sim.SimBus) hosted on the transport kit's pty harness.

A thread serves the harness's device side: it cuts the gateway's bytes into FT1.2 frames, asks
the bus what comes back at the baud the gateway set on its side (`gateway_speed`: meters at
another baud hear noise), and sends it paced to that baud, as the other simulators pace their
answers: the answer starts after the request's own wire time plus the meter's reaction and
flows a few characters at a time at 11 bits per character. An answer the gateway talks over
before it starts (a meter slower than the answer timeout) is dropped: late is lost.
An echoing converter (`SimBus.echo`) sends the request back while it goes out.

Run `python -m drivers.mbus_wired.simpty --frames FRAMES_JSON --fixture NAME --meters 20`:
it prints one JSON line (the port and every meter's addresses) and serves until interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import select
import signal
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Final

from drivers import ft12
from drivers.mbus_wired import link
from drivers.mbus_wired.address import SecondaryAddress
from drivers.mbus_wired.meter_address import secondary_hex
from drivers.mbus_wired.sim import REACTION_S, SimBus, SimMeter
from drivers.transport.simthread import DeviceThread

POLL_S: Final = 0.05      # how often the serving thread looks for its stop
PACE_TICK_S: Final = 0.01  # bytes due are written at least this often (well inside 2 chars
#                            + 50 ms, the master's inter-byte timeout at any baud)
DEFAULT_BAUD: Final = 2400


def baud_of(speed: int | None) -> int:
    """The baud rate of a termios speed constant (0 for none or an unusual one)."""
    return next((b for b in link.BAUD_RATES if getattr(termios, f"B{b}", None) == speed), 0)


class BusSim(DeviceThread):
    """A SimBus on one pty; use as a context manager and open `port_path`."""

    def __init__(self, bus: SimBus, *, paced: bool = True) -> None:
        super().__init__("mbus-sim")
        self.bus = bus
        self.paced = paced
        self.dropped_late = 0   # answers the gateway talked over before they started

    def gateway_baud(self) -> int:
        return baud_of(self.link.gateway_speed()) or DEFAULT_BAUD

    def reset_line(self) -> None:
        """Put the gateway side's line back to a speed no one uses, after a client closed it.

        A pty keeps no parity: opening it again at the same baud with 8E1 changes nothing,
        and the kernel refuses a tcsetattr that changes nothing (EINVAL). A test that opens
        the port a second time (the CLI's scan, then `gateway run`) calls this in between;
        a real UART has no such quirk."""
        fd = os.open(self.port_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            attrs = termios.tcgetattr(fd)
            attrs[4] = attrs[5] = termios.B50
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
        finally:
            os.close(fd)

    # ---- serving -------------------------------------------------------------------------
    def _serve(self) -> None:
        while not self._stop.is_set():
            if self._readable(POLL_S):
                self._take()
            for request in self._requests():
                self._answer(request)

    def _readable(self, timeout_s: float) -> bool:
        ready, _, _ = select.select([self._fd], [], [], max(0.0, timeout_s))
        return bool(ready)

    def _take(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            self._buffer.extend(os.read(self._fd, 4096))

    def _requests(self) -> list[bytes]:
        """Whole frames from the buffer; junk before a start byte is dropped as a slave
        would (it waits for the next frame)."""
        frames = []
        while self._buffer:
            outcome = ft12.find_frame(bytes(self._buffer))
            if isinstance(outcome, ft12.NeedMore):
                break
            size = outcome.skip if isinstance(outcome, ft12.Invalid) else outcome.size
            frame = bytes(self._buffer[:size])
            del self._buffer[:size]
            if isinstance(outcome, ft12.Found):
                frames.append(frame)
        return frames

    def _answer(self, request: bytes) -> None:
        baud = self.gateway_baud()
        start = time.monotonic()
        reply = self.bus.exchange(request, baud)
        data = reply.data
        if self.bus.echo:
            self._send(data[:len(request)], start, baud)
            data = data[len(request):]
        if not data:
            return
        request_s = link.wire_time_s(len(request), baud) if self.paced else 0.0
        begin = start + request_s + reply.delay_s
        if self._interrupted_before(begin):
            self.dropped_late += 1
            return
        self._send(data, begin, baud)

    def _interrupted_before(self, moment: float) -> bool:
        """Whether the gateway sends again before `moment` (the answer would be too late)."""
        while (left := moment - time.monotonic()) > 0 and not self._stop.is_set():
            if self._readable(min(left, POLL_S)):
                self._take()
                if self._buffer:
                    return True
        return False

    def _send(self, data: bytes, begin: float, baud: int) -> None:
        """`data` from `begin` on, each character no earlier than the line would carry it."""
        if not self.paced:
            self._write(data)
            return
        char_s = link.wire_time_s(1, baud)
        sent = 0
        while sent < len(data) and not self._stop.is_set():
            elapsed = time.monotonic() - begin
            due = min(len(data), int(elapsed / char_s) + 1) if elapsed >= 0 else 0
            if due > sent:
                self._write(data[sent:due])
                sent = due
            if sent < len(data):
                self._stop.wait(min(PACE_TICK_S, max(0.0, (sent + 1) * char_s - elapsed)))

    def _write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self._fd, data)


# ---- meters from fixtures ----------------------------------------------------------------

def load_frames(path: str | Path) -> dict[str, bytes]:
    """name -> frame bytes of a corpus `frames.json` (name, frame_hex per entry)."""
    return {e["name"]: bytes.fromhex(e["frame_hex"]) for e in json.loads(Path(path).read_text())}


def meters_from_frames(telegram_sets: list[list[bytes]], count: int, *, seed: int = 0,
                       primaries: bool = False) -> list[SimMeter]:
    """`count` meters cycling through the given telegram sets (one set is one meter's
    readout: several frames make a multi-telegram meter), each with its own random id (its
    fixture's manufacturer, version and medium) and, with `primaries`, primary address 1, 2..."""
    ids = random.Random(seed).sample(range(10**8), count)
    meters = []
    for index, number in enumerate(ids):
        base = SimMeter.from_frames(telegram_sets[index % len(telegram_sets)])
        address = SecondaryAddress(f"{number:08d}", base.header.manufacturer, base.header.version,
                                   base.header.medium)
        meters.append(base.with_address(address, index + 1 if primaries else 0))
    return meters


def describe(meters: list[SimMeter]) -> list[dict[str, object]]:
    return [{"secondary": secondary_hex(m.secondary), "primary": m.primary,
             "text": m.secondary.text(), "slow": m.delay_s > REACTION_S, "silent": m.silent}
            for m in meters]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m drivers.mbus_wired.simpty",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", required=True, help="a corpus frames.json")
    parser.add_argument("--fixture", action="append", required=True, metavar="NAME[+NAME...]",
                        help="entry name(s); NAME+NAME is one multi-telegram meter")
    parser.add_argument("--meters", type=int, default=1, help="how many meters (cycling)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random ids")
    parser.add_argument("--primary", action="store_true", help="primary addresses 1, 2, ...")
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUD, choices=link.BAUD_RATES,
                        help="the baud the meters listen at")
    parser.add_argument("--echo", action="store_true", help="an echoing level converter")
    parser.add_argument("--slow", type=int, default=0, help="the first N meters answer late")
    parser.add_argument("--silent", type=int, default=0, help="the last N meters never answer")
    parser.add_argument("--no-pace", action="store_true", help="answer at once, not at baud")
    return parser


def bus_from_args(args: argparse.Namespace) -> SimBus:
    frames = load_frames(args.frames)
    sets = [[frames[name] for name in spec.split("+")] for spec in args.fixture]
    meters = meters_from_frames(sets, args.meters, seed=args.seed, primaries=args.primary)
    for meter in meters:
        meter.baud = args.baud
    for meter in meters[:args.slow]:
        meter.delay_s = link.answer_timeout_s(args.baud) * 2
    for meter in meters[len(meters) - args.silent:] if args.silent else []:
        meter.silent = True
    return SimBus(meters, echo=args.echo)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    bus = bus_from_args(args)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with BusSim(bus, paced=not args.no_pace) as sim:
        sys.stdout.write(json.dumps({"port": sim.port_path, "meters": describe(bus.meters)})
                         + "\n")
        sys.stdout.flush()
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
