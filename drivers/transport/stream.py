"""The byte-stream interface every session talks through, and the buffered reader they share.

A session writes a request and reads one message: it says where a message ends (an
`EndFinder` over the bytes so far), how long the first byte may take (the device's reaction
time) and how long between two bytes (a silence mid-message means the message is cut). The
backends (serial over a descriptor `board/` opened, TCP, in-memory for tests) only move bytes;
buffering, message ends, the runaway-line bound and the wire trace live here, once
(httpcore's `_backends/base.py` is the model: sessions never see a socket or a tty).
"""

from __future__ import annotations

import abc
import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from core.logs import log_bytes, wire_logger
from drivers.errors import DeviceTimeout, FrameError, PortUnavailable

# Given the bytes received so far, the end index of a complete message, or None: wait for more.
# A finder may also raise FrameError for bytes that can never become a message.
EndFinder = Callable[[bytes], int | None]
# A readout larger than this is a runaway line (noise, wrong baud), not a meter.
MAX_MESSAGE_BYTES: Final[int] = 65536
# 7E1 and 8N1 both put 10 bits on the wire per character (start + 7/8 data + parity/none + stop).
BITS_PER_CHAR: Final[int] = 10


def line_time_s(n_bytes: int, baud: int) -> float:
    """Seconds `n_bytes` take on the wire at `baud`."""
    return n_bytes * BITS_PER_CHAR / baud


@dataclass(frozen=True, slots=True)
class LineSettings:
    """What a baud switch changes; TCP and in-memory streams accept and record them."""

    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"  # "N" | "E" | "O"
    stopbits: int = 1


def fixed_length(count: int) -> EndFinder:
    """A finder for a message of exactly `count` bytes (an echo, a fixed reply)."""
    return lambda buf: count if len(buf) >= count else None


class StreamState(enum.Enum):
    """OPEN -> LOST (unplugged, peer gone: reads and writes fail) -> CLOSED; OPEN -> CLOSED."""

    OPEN = "open"
    LOST = "lost"
    CLOSED = "closed"


class ByteStream(abc.ABC):
    """Bytes both ways with message reads; one task uses a stream at a time."""

    def __init__(self, *, name: str, protocol: str, meter: str | None = None) -> None:
        self.name = name  # the port or host:port, for error messages
        self.meter = meter  # who the trace lines are about; sessions set it per exchange
        self._wire = wire_logger(protocol)
        self._buffer = bytearray()
        self._data = asyncio.Event()
        self.state = StreamState.OPEN
        self._why = "closed"  # why the stream is not open; said by the next read or write
        self._on_data: Callable[[bytes], None] | None = None
        self._on_lost: Callable[[str], None] | None = None

    # ---- what a backend provides ---------------------------------------------------------
    @abc.abstractmethod
    async def _send(self, data: bytes) -> None:
        """Put `data` on the wire (and wait out its line time where there is one)."""

    @abc.abstractmethod
    def _shutdown(self) -> None:
        """Release the descriptor, socket or feeder."""

    @property
    @abc.abstractmethod
    def settings(self) -> LineSettings: ...

    @abc.abstractmethod
    def set_line(self, settings: LineSettings) -> None:
        """Change baud rate and framing (IEC 62056-21 mode C switches after the sign-on)."""

    # ---- what backends call ------------------------------------------------------------
    def _received(self, chunk: bytes) -> None:
        log_bytes(self._wire, "rx", self.meter or self.name, chunk)
        if self._on_data is not None:
            self._on_data(chunk)
            return
        self._buffer.extend(chunk)
        self._data.set()

    def _lost(self, reason: str) -> None:
        if self.state is not StreamState.OPEN:
            return  # the first reason is the one worth reporting; a closed stream is not lost
        self.state, self._why = StreamState.LOST, reason
        self._data.set()
        if self._on_lost is not None:
            self._on_lost(reason)

    # ---- push mode -----------------------------------------------------------------------
    def push_to(self, on_data: Callable[[bytes], None],
                on_lost: Callable[[str], None] | None = None) -> None:
        """Hand every chunk to `on_data` as it arrives, bytes already buffered first: for a
        receiver whose own framer cuts a continuous stream (a wM-Bus dongle), where a message
        read would split frames the framer must see whole. `on_lost` hears of an unplug."""
        self._on_data, self._on_lost = on_data, on_lost
        pending = self.discard_input()
        if pending:
            on_data(pending)

    # ---- what sessions call ------------------------------------------------------------
    @property
    def baud(self) -> int:
        return self.settings.baudrate

    def set_baud(self, baud: int) -> None:
        current = self.settings
        if current.baudrate != baud:  # re-applying the same settings fails on some ptys
            self.set_line(LineSettings(baud, current.bytesize, current.parity, current.stopbits))

    @property
    def connected(self) -> bool:
        return self.state is StreamState.OPEN

    async def write(self, data: bytes) -> None:
        if not self.connected:
            raise PortUnavailable(f"{self.name}: {self._why}")
        log_bytes(self._wire, "tx", self.meter or self.name, data)
        await self._send(data)

    def discard_input(self) -> bytes:
        """Drop what arrived unasked (a late answer to an earlier request); returns it."""
        stale = bytes(self._buffer)
        self._buffer.clear()
        return stale

    def pending(self) -> bytes:
        """Bytes received and not yet taken by a read (what a timed-out read saw)."""
        return bytes(self._buffer)

    async def read_message(self, find_end: EndFinder, first_timeout_s: float,
                           inter_byte_timeout_s: float, what: str) -> bytes:
        """Bytes up to the end `find_end` reports; the first byte must come within
        `first_timeout_s`, each further one within `inter_byte_timeout_s`. The bytes of a
        message that timed out stay in `pending()` for the caller to classify."""
        timeout = first_timeout_s if not self._buffer else inter_byte_timeout_s
        while True:
            end = find_end(bytes(self._buffer))
            if end is not None:
                message = bytes(self._buffer[:end])
                del self._buffer[:end]
                return message
            if len(self._buffer) > MAX_MESSAGE_BYTES:
                raise FrameError(f"{self.name}: {what} exceeds {MAX_MESSAGE_BYTES} bytes", 0)
            if not self.connected:
                raise PortUnavailable(f"{self.name}: {self._why}")
            self._data.clear()
            before = len(self._buffer)
            try:
                async with asyncio.timeout(timeout):
                    await self._data.wait()
            except TimeoutError:
                got = f"{len(self._buffer)} bytes" if self._buffer else "nothing"
                raise DeviceTimeout(f"{self.name}: no complete {what} (received {got})") from None
            if len(self._buffer) > before:
                timeout = inter_byte_timeout_s

    async def expect_echo(self, sent: bytes, timeout_s: float) -> None:
        """Consume a half-duplex line's echo of `sent`, which must come back unchanged."""
        echo = await self.read_message(fixed_length(len(sent)), timeout_s, timeout_s, "echo")
        if echo != sent:
            raise FrameError(f"{self.name}: echo {echo!r} differs from sent {sent!r}", 0)

    def close(self) -> None:
        if self.state is not StreamState.CLOSED:
            self.state = StreamState.CLOSED
            self._data.set()
            self._shutdown()

