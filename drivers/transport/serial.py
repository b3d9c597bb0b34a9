"""A serial stream over a file descriptor that `board/` opened: reads on the event loop,
line settings (baud switching) through termios, RS-485 direction by RTS where asked.

The descriptor is watched with `loop.add_reader`, so a slow 300-baud meter never blocks the
loop. Writes are short (a request is 8-40 bytes) and are waited out by their line time, so a
half-duplex bus is free to answer when `write` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import struct
import termios
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from drivers.errors import PortUnavailable
from drivers.transport.stream import ByteStream, LineSettings, line_time_s

LOGGER = logging.getLogger(__name__)

READ_CHUNK: Final[int] = 4096  # far above any meter frame; one read empties the tty queue
WRITE_RETRY_S: Final[float] = 0.001  # the tty queue is full: wait about one character at 9600
MAX_WRITE_WAIT_S: Final[float] = 2.0  # a queue that never drains is a dead adapter

_BAUD: Final[dict[int, int]] = {
    rate: getattr(termios, f"B{rate}") for rate in (
        300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
    if hasattr(termios, f"B{rate}")}
_CSIZE: Final[dict[int, int]] = {5: termios.CS5, 6: termios.CS6, 7: termios.CS7, 8: termios.CS8}


@dataclass(frozen=True, slots=True)
class RtsDirection:
    """RS-485 driver-enable on RTS, toggled from user space around each write ("rts" mode)."""

    level_for_tx: bool = True
    level_for_rx: bool = False
    delay_before_tx_s: float = 0.0
    delay_before_rx_s: float = 0.0

    @classmethod
    def from_rs485(cls, rs485: Mapping[str, Any]) -> RtsDirection | None:
        """From a bus's `[bus.rs485]` table: only the "rts" mode needs us (the kernel does
        "kernel" mode itself once board/ set it)."""
        if not rs485.get("enabled") or rs485.get("mode", "kernel") != "rts":
            return None
        return cls(bool(rs485.get("rts_level_for_tx", True)),
                   bool(rs485.get("rts_level_for_rx", False)),
                   rs485.get("delay_before_tx_ms", 0) / 1000,
                   rs485.get("delay_before_rx_ms", 0) / 1000)


def apply_line_settings(fd: int, settings: LineSettings) -> None:
    """Baud rate, character size, parity and stop bits; raises ValueError / termios.error."""
    if settings.baudrate not in _BAUD:
        raise ValueError(f"baud rate {settings.baudrate} not supported")
    attrs = termios.tcgetattr(fd)
    cflag = attrs[2] & ~(termios.CSIZE | termios.PARENB | termios.PARODD | termios.CSTOPB)
    cflag |= _CSIZE[settings.bytesize] | termios.CREAD | termios.CLOCAL
    if settings.parity in ("E", "O"):
        cflag |= termios.PARENB | (termios.PARODD if settings.parity == "O" else 0)
    if settings.stopbits == 2:
        cflag |= termios.CSTOPB
    attrs[2] = cflag
    attrs[4] = attrs[5] = _BAUD[settings.baudrate]
    termios.tcsetattr(fd, termios.TCSADRAIN, attrs)


def take_descriptor(opened: Any) -> int:
    """The descriptor of what board/ opened: an int as is, or a port object's (pyserial) taken
    over: duplicated, and the object closed so only the stream holds the line. The exclusive
    lock and the RS-485 mode belong to the open file, which the duplicate keeps."""
    if isinstance(opened, int):
        return opened
    try:
        return os.dup(int(opened.fileno()))
    finally:
        with contextlib.suppress(Exception):
            opened.close()


def _set_rts(fd: int, level: bool) -> None:
    request = termios.TIOCMBIS if level else termios.TIOCMBIC
    fcntl.ioctl(fd, request, struct.pack("I", termios.TIOCM_RTS))


class SerialStream(ByteStream):
    """The stream owns `fd` from now on and closes it."""

    def __init__(self, fd: int, settings: LineSettings, *, name: str, protocol: str,
                 meter: str | None = None, rts: RtsDirection | None = None,
                 half_duplex: bool = True) -> None:
        """`half_duplex`: a write returns once its bytes have left the line (RS-485, an
        optical probe: the device may only answer then); a full-duplex USB receiver (a wM-Bus
        dongle) needs no such wait."""
        super().__init__(name=name, protocol=protocol, meter=meter)
        self._fd = fd
        self._settings = settings
        self._rts = rts
        self._half_duplex = half_duplex
        self._loop = asyncio.get_running_loop()
        os.set_blocking(fd, False)
        self._loop.add_reader(fd, self._on_readable)

    @property
    def settings(self) -> LineSettings:
        return self._settings

    def set_line(self, settings: LineSettings) -> None:
        try:
            apply_line_settings(self._fd, settings)
        except (OSError, termios.error, ValueError) as exc:
            raise PortUnavailable(f"{self.name}: cannot set {settings}: {exc}") from exc
        self._settings = settings
        LOGGER.debug("serial_line_changed", extra={"port": self.name, "baud": settings.baudrate})

    def _on_readable(self) -> None:
        try:
            chunk = os.read(self._fd, READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # adapter unplugged (EIO): stop watching, report on the next read
            self._loop.remove_reader(self._fd)
            self._lost(f"read failed: {exc}")
            return
        if not chunk:
            self._loop.remove_reader(self._fd)
            self._lost("port closed")
            return
        self._received(chunk)

    async def _send(self, data: bytes) -> None:
        if self._rts is not None:
            await self._direction(self._rts.level_for_tx, self._rts.delay_before_tx_s)
        try:
            async with asyncio.timeout(MAX_WRITE_WAIT_S):
                await self._write_all(data)
        except TimeoutError:
            raise PortUnavailable(f"{self.name}: write did not drain") from None
        except OSError as exc:
            self._lost(f"write failed: {exc}")
            raise PortUnavailable(f"{self.name}: write failed: {exc}") from exc
        if self._half_duplex:
            # the bytes are in the UART; wait until they have left so the bus is the meter's
            await asyncio.sleep(line_time_s(len(data), self._settings.baudrate))
        if self._rts is not None:
            await self._direction(self._rts.level_for_rx, self._rts.delay_before_rx_s)

    async def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # no suspension while the tty queue takes the bytes (the usual case)
            try:
                view = view[os.write(self._fd, view):]
            except BlockingIOError:
                await asyncio.sleep(WRITE_RETRY_S)

    async def _direction(self, level: bool, settle_s: float) -> None:
        try:
            _set_rts(self._fd, level)
        except OSError as exc:
            raise PortUnavailable(f"{self.name}: cannot drive RTS: {exc}") from exc
        if settle_s > 0:
            await asyncio.sleep(settle_s)

    def _shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._fd)
        with contextlib.suppress(OSError):
            os.close(self._fd)
