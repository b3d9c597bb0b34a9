"""Non-blocking serial I/O for the asyncio loop over a pyserial-like port handed in by the caller.

The port's file descriptor is watched with `loop.add_reader`, so a slow 300-baud meter never blocks
the loop. Writes are short (a sign-on is 5-40 bytes) and are waited out by their line time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import termios
from collections.abc import Callable
from typing import Any, Final

from drivers.errors import DeviceTimeout, FrameError, PortUnavailable

LOGGER = logging.getLogger(__name__)

# 7E1 and 8N1 both put 10 bits on the wire per character (start + 7/8 data + parity/none + stop).
BITS_PER_CHAR: Final = 10
# A readout larger than this is a runaway line (noise, wrong baud), not a meter.
MAX_MESSAGE_BYTES: Final = 65536
READ_CHUNK: Final = 4096

# Given the bytes so far, the end index of a complete message, or None to wait for more.
EndFinder = Callable[[bytes], int | None]


def line_time_s(n_bytes: int, baud: int) -> float:
    """Seconds `n_bytes` take on the wire at `baud`."""
    return n_bytes * BITS_PER_CHAR / baud


def _port_fd(port: Any) -> int:
    fd = getattr(port, "fd", None)
    return int(fd) if fd is not None else int(port.fileno())


class SerialLine:
    """One open port: buffered async reads, writes, baud changes. Not shared between tasks."""

    def __init__(self, port: Any, name: str) -> None:
        self.port = port
        self.name = name
        self._fd = _port_fd(port)
        self._buffer = bytearray()
        self._data_event = asyncio.Event()
        self._error: OSError | None = None
        self._loop = asyncio.get_running_loop()
        os.set_blocking(self._fd, False)
        self._loop.add_reader(self._fd, self._on_readable)

    @property
    def baud(self) -> int:
        return int(self.port.baudrate)

    def set_baud(self, baud: int) -> None:
        if self.baud == baud:
            return  # re-applying the same settings fails on some ptys (kernel normalises CS7)
        try:
            self.port.baudrate = baud
        except (OSError, termios.error, ValueError) as exc:
            raise PortUnavailable(f"{self.name}: cannot set {baud} baud: {exc}") from exc
        LOGGER.debug("serial_baud_changed", extra={"port": self.name, "baud": baud})

    def _on_readable(self) -> None:
        try:
            chunk = os.read(self._fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:  # adapter unplugged: stop watching, report on the next read
            self._error = exc
            self._loop.remove_reader(self._fd)
            chunk = b""
        self._buffer.extend(chunk)
        self._data_event.set()

    def discard_input(self) -> None:
        self._buffer.clear()

    async def write(self, data: bytes) -> None:
        """Send and wait until the bytes have left at the current baud rate."""
        try:
            self.port.write(data)
        except OSError as exc:
            raise PortUnavailable(f"{self.name}: write failed: {exc}") from exc
        await asyncio.sleep(line_time_s(len(data), self.baud))

    async def read_message(
        self, find_end: EndFinder, first_timeout_s: float, inter_char_timeout_s: float, what: str
    ) -> bytes:
        """Bytes up to the end `find_end` reports; the first byte must come within
        `first_timeout_s` (reaction time), each further one within `inter_char_timeout_s`."""
        timeout = first_timeout_s
        while True:
            end = find_end(bytes(self._buffer))
            if end is not None:
                message = bytes(self._buffer[:end])
                del self._buffer[:end]
                return message
            if len(self._buffer) > MAX_MESSAGE_BYTES:
                raise FrameError(f"{self.name}: {what} exceeds {MAX_MESSAGE_BYTES} bytes")
            if self._error is not None:
                raise PortUnavailable(f"{self.name}: read failed: {self._error}")
            self._data_event.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._data_event.wait()
            except TimeoutError:
                got = f"{len(self._buffer)} bytes" if self._buffer else "nothing"
                raise DeviceTimeout(f"{self.name}: no complete {what} (received {got})") from None
            if self._buffer:
                timeout = inter_char_timeout_s

    async def expect_echo(self, sent: bytes, timeout_s: float) -> None:
        """Consume a half-duplex probe's echo of `sent`, which must come back unchanged."""
        echo = await self.read_message(
            lambda buf: len(sent) if len(buf) >= len(sent) else None, timeout_s, timeout_s, "echo"
        )
        if echo != sent:
            raise FrameError(f"{self.name}: echo {echo!r} differs from sent {sent!r}", 0)

    def release(self) -> None:
        """Stop watching the port; the caller keeps it open."""
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._fd)

    def close(self) -> None:
        self.release()
        with contextlib.suppress(Exception):
            self.port.close()
