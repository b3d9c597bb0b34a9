"""The pty simulator harness: a bridged pair of pseudo-terminals with fault injection.

Every simulator (Modbus, IEC 62056-21, wM-Bus dongles) serves its device side; the gateway opens
the stable link name through `board/` as it would a USB adapter. Faults: garbage, a corrupted
byte, a bad checksum (the protocol's own hook rebuilds the frame wrong), a truncated or dropped
chunk, a delay, silence until lifted, and unplug / replug (the link name moves to a new pty).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import termios
import tty
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

LOGGER = logging.getLogger(__name__)

# One read from a pty master; far above any meter frame, so a frame rarely spans two reads.
READ_CHUNK: Final[int] = 4096


class Direction(enum.Enum):
    """Which way bytes travel over the bridge."""

    TO_GATEWAY = "to_gateway"  # device (simulator) -> gateway
    TO_DEVICE = "to_device"  # gateway -> device


class FaultKind(enum.Enum):
    DROP = "drop"  # swallow the whole next chunk
    CORRUPT = "corrupt"  # flip all bits of one byte of the next chunk
    GARBAGE = "garbage"  # prepend bytes to the next chunk
    TRUNCATE = "truncate"  # cut the last `count` bytes of the next chunk
    DELAY = "delay"  # hold the next chunk back `seconds`
    BAD_CHECKSUM = "bad_checksum"  # the direction's checksum hook spoils the next chunk's check


@dataclass(frozen=True, slots=True)
class Fault:
    """A one-shot fault applied to the next chunk crossing the bridge in one direction."""

    kind: FaultKind
    count: int = 1
    data: bytes = b""
    seconds: float = 0.0
    offset: int = 0


ChunkFilter = Callable[[bytes], bytes]
# Given a whole frame, the same frame with a wrong checksum (each protocol knows its own check).
ChecksumSpoiler = Callable[[bytes], bytes]


def flip_last_byte(chunk: bytes) -> bytes:
    """The default spoiler: the check sits at the end of most meter frames (CRC, BCC, XOR)."""
    return chunk[:-1] + bytes([chunk[-1] ^ 0xFF])


def _open_raw_pty() -> tuple[int, int, str]:
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no line discipline: bytes pass untouched
    os.set_blocking(master, False)
    return master, slave, os.ttyname(slave)


class PtyLink:
    """Two bridged ptys: the device opens `device_path`, the gateway `gateway_path`.

    We keep each slave open ourselves so the pty survives the far side closing and reopening it.
    """

    def __init__(self, link_name: str | Path | None = None) -> None:
        self.link_name = Path(link_name) if link_name is not None else None
        self._dev: tuple[int, int, str] | None = None
        self._gw: tuple[int, int, str] | None = None
        self._faults: dict[Direction, deque[Fault]] = {d: deque() for d in Direction}
        self._filters: dict[Direction, ChunkFilter | None] = dict.fromkeys(Direction)
        self._spoilers: dict[Direction, ChecksumSpoiler] = dict.fromkeys(Direction, flip_last_byte)
        self._silent: set[Direction] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.bytes_bridged: dict[Direction, int] = dict.fromkeys(Direction, 0)

    @property
    def device_path(self) -> str:
        if self._dev is None:
            raise RuntimeError("pty link not started")
        return self._dev[2]

    @property
    def gateway_path(self) -> str:
        """The stable link name if one was given, else the current gateway-side pty path."""
        if self.link_name is not None:
            return str(self.link_name)
        if self._gw is None:
            raise RuntimeError("pty link unplugged or not started")
        return self._gw[2]

    @property
    def plugged(self) -> bool:
        return self._gw is not None

    def gateway_speed(self) -> int | None:
        """The termios speed constant (termios.B300...) the gateway set on its side, None while
        unplugged: a simulated meter answering at another rate sends garbage, as on a line."""
        gw = self._gw
        if gw is None:
            return None
        try:
            return int(termios.tcgetattr(gw[0])[4])  # a pty master reports its slave's settings
        except (OSError, termios.error):
            return None

    def open_device(self) -> int:
        """A descriptor on the device side for a simulator serving from a thread (raw,
        non-blocking); the simulator closes it."""
        fd = os.open(self.device_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(fd)
        return fd

    async def start(self) -> PtyLink:
        self._loop = asyncio.get_running_loop()
        self._dev = _open_raw_pty()
        self._loop.add_reader(self._dev[0], self._pump, Direction.TO_GATEWAY)
        self.replug()
        return self

    async def stop(self) -> None:
        self.unplug()
        if self._dev is not None and self._loop is not None:
            self._loop.remove_reader(self._dev[0])
            for fd in self._dev[:2]:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._dev = None

    async def __aenter__(self) -> PtyLink:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def inject(self, direction: Direction, fault: Fault) -> None:
        """Queue a one-shot fault for the next chunk in `direction`."""
        self._faults[direction].append(fault)

    def set_filter(self, direction: Direction, chunk_filter: ChunkFilter | None) -> None:
        """Pass every chunk in `direction` through `chunk_filter` (protocol-aware faults)."""
        self._filters[direction] = chunk_filter

    def set_checksum_hook(self, direction: Direction, spoiler: ChecksumSpoiler) -> None:
        """How a BAD_CHECKSUM fault spoils a frame in `direction` (e.g. a CRC at a known spot)."""
        self._spoilers[direction] = spoiler

    def silence(self, direction: Direction, on: bool = True) -> None:
        """Swallow everything in `direction` until lifted: a hung device or a cut wire pair."""
        if on:
            self._silent.add(direction)
        else:
            self._silent.discard(direction)

    def unplug(self) -> None:
        """The adapter vanishes: the link name is removed and the gateway's pty hangs up."""
        if self.link_name is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link_name.unlink()
        if self._gw is not None and self._loop is not None:
            self._loop.remove_reader(self._gw[0])
            for fd in self._gw[:2]:
                with contextlib.suppress(OSError):
                    os.close(fd)
            LOGGER.info("pty_unplugged", extra={"port": self._gw[2]})
            self._gw = None

    def replug(self) -> None:
        """The adapter comes back: a fresh pty, and the link name re-pointed at it."""
        if self._gw is not None or self._loop is None:
            return
        self._gw = _open_raw_pty()
        self._loop.add_reader(self._gw[0], self._pump, Direction.TO_DEVICE)
        if self.link_name is not None:
            tmp = self.link_name.with_name(self.link_name.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self._gw[2])
            tmp.replace(self.link_name)  # atomic: the name never points nowhere while plugged
        LOGGER.info("pty_plugged", extra={"port": self._gw[2]})

    def _pump(self, direction: Direction) -> None:
        source = self._dev if direction is Direction.TO_GATEWAY else self._gw
        if source is None:
            return
        try:
            chunk = os.read(source[0], READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""  # EIO: no one holds the slave open right now
        if not chunk:
            return
        self.deliver(direction, chunk)

    def deliver(self, direction: Direction, chunk: bytes) -> None:
        """Apply filter and faults to a chunk, then hand it to the other side."""
        if direction in self._silent:
            return
        chunk_filter = self._filters[direction]
        if chunk_filter is not None:
            chunk = chunk_filter(chunk)
        delay = 0.0
        queue = self._faults[direction]
        if queue and chunk:
            fault = queue.popleft()
            if fault.kind is FaultKind.BAD_CHECKSUM:
                chunk = self._spoilers[direction](chunk)
            else:
                chunk, delay = _apply(fault, chunk)
        if not chunk:
            return
        if delay > 0 and self._loop is not None:
            self._loop.call_later(delay, self._write, direction, chunk)
        else:
            self._write(direction, chunk)

    def _write(self, direction: Direction, chunk: bytes) -> None:
        target = self._gw if direction is Direction.TO_GATEWAY else self._dev
        if target is None:
            return  # unplugged: bytes fall on the floor like on a cut cable
        try:
            written = os.write(target[0], chunk)
        except (BlockingIOError, OSError):
            written = 0  # reader gone or its queue full: a wire drops bytes too
        self.bytes_bridged[direction] += written


def _apply(fault: Fault, chunk: bytes) -> tuple[bytes, float]:
    if fault.kind is FaultKind.DROP:
        return b"", 0.0
    if fault.kind is FaultKind.CORRUPT:
        index = min(fault.offset, len(chunk) - 1)
        return chunk[:index] + bytes([chunk[index] ^ 0xFF]) + chunk[index + 1:], 0.0
    if fault.kind is FaultKind.GARBAGE:
        return fault.data + chunk, 0.0
    if fault.kind is FaultKind.TRUNCATE:
        return chunk[: max(0, len(chunk) - fault.count)], 0.0
    return chunk, fault.seconds
