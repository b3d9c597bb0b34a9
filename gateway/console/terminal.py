"""Byte channels (serial line, pty, the user's tty) and the line-editing terminal over them."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from typing import Protocol

from gateway.console.lineedit import Completer, EndOfInput, Interrupt, LineDone, LineEditor

LOGGER = logging.getLogger(__name__)

READ_CHUNK = 1024
MAX_PENDING_OUTPUT = 64 * 1024  # a line nobody reads (XOFF, unplugged) must not eat RAM


class Channel(Protocol):
    async def read(self) -> bytes:
        """Some bytes; b"" when the line hung up."""

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class FdChannel:
    """Non-blocking reads and writes on file descriptors, driven by the asyncio loop.

    Writes are buffered and drained when the fd is writable, so a stalled terminal never
    blocks the service loop; beyond MAX_PENDING_OUTPUT the oldest output is dropped.
    """

    def __init__(self, read_fd: int, write_fd: int | None = None) -> None:
        self._rfd = read_fd
        self._wfd = read_fd if write_fd is None else write_fd
        self._loop = asyncio.get_running_loop()
        self._incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self._pending = bytearray()
        self._closed = False
        self._saved_flags = {fd: _set_nonblocking(fd) for fd in {self._rfd, self._wfd}}
        self._loop.add_reader(self._rfd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._rfd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:  # EIO: the other end of a pty closed, the USB adapter left
            data = b""
        if not data:
            self._loop.remove_reader(self._rfd)
        self._incoming.put_nowait(data)

    async def read(self) -> bytes:
        if self._closed:
            return b""
        return await self._incoming.get()

    def write(self, data: bytes) -> None:
        if self._closed or not data:
            return
        was_idle = not self._pending
        self._pending += data
        if len(self._pending) > MAX_PENDING_OUTPUT:
            del self._pending[: len(self._pending) - MAX_PENDING_OUTPUT]
        if was_idle:
            self._drain()

    def _drain(self) -> None:
        try:
            sent = os.write(self._wfd, self._pending)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._pending.clear()  # hung up: reads will report it
            self._loop.remove_writer(self._wfd)
            return
        del self._pending[:sent]
        if self._pending:
            self._loop.add_writer(self._wfd, self._drain)
        else:
            self._loop.remove_writer(self._wfd)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._rfd)
        self._loop.remove_writer(self._wfd)
        for fd, flags in self._saved_flags.items():
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, fcntl.F_SETFL, flags)
        self._incoming.put_nowait(b"")


def _set_nonblocking(fd: int) -> int:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    return flags


class ByteTerminal:
    """The console's `Terminal` over a byte channel, with line editing and idle logout."""

    def __init__(self, channel: Channel, idle_logout_s: float) -> None:
        self.channel = channel
        self.editor = LineEditor()
        self.idle_logout_s = idle_logout_s
        self.idle = False  # the last ask() ended because nobody typed
        self.hung_up = False  # the line is gone, or Ctrl-D
        self._unread = b""  # bytes after the last finished line, for the next prompt

    def set_completer(self, completer: Completer | None) -> None:
        self.editor.completer = completer

    def write(self, text: str) -> None:
        self.channel.write(text.replace("\n", "\r\n").encode("ascii", "replace"))

    async def ask(self, prompt: str, *, secret: bool = False) -> str | None:
        self.idle = False
        if self.hung_up:
            return None
        self.editor.start(prompt, secret=secret)
        self._flush_echo()
        while True:
            data = self._unread or await self._read_or_idle()
            if data is None:
                return None
            event = self._feed_until_event(data)
            self._flush_echo()
            if isinstance(event, LineDone):
                return event.text
            if isinstance(event, EndOfInput):
                self.hung_up = True
            if event is not None:
                return None

    async def _read_or_idle(self) -> bytes | None:
        try:
            async with asyncio.timeout(self.idle_logout_s):
                data = await self.channel.read()
        except TimeoutError:
            self.idle = True
            return None
        if not data:
            self.hung_up = True
            return None
        return data

    def _feed_until_event(self, data: bytes) -> LineDone | Interrupt | EndOfInput | None:
        """Feed up to the end of one line; keep the rest for the next prompt.

        Typed-ahead text (a pasted login and password) must meet the next prompt's mode:
        a password line fed while the login prompt was active would be echoed in clear.
        """
        self._unread = b""
        for index in range(len(data)):
            events = self.editor.feed(data[index : index + 1])
            if events:
                self._unread = data[index + 1 :]
                return events[0]
        return None

    async def interrupted(self, timeout_s: float) -> bool:
        if self._unread:
            pending, self._unread = self._unread, b""
            if b"\x03" in pending:
                return True
        try:
            async with asyncio.timeout(timeout_s):
                data = await self.channel.read()
        except TimeoutError:
            return False
        if not data:
            self.hung_up = True
            return True
        return b"\x03" in data  # other keys are ignored while a command streams output

    def _flush_echo(self) -> None:
        self.channel.write(self.editor.take_output())
