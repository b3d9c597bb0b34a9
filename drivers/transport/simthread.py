"""The pty harness on its own event-loop thread, for simulators that serve from a thread
(IEC 62056-21 meters, DSMR P1 ports, wM-Bus dongles) or run without a loop of their own.

Every call that touches the link runs on the harness's loop; the simulator reads and writes
the device side through the descriptor `open_device()` gives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Self, TypeVar

from drivers.transport.sim import Direction, Fault, PtyLink

T = TypeVar("T")

CALL_TIMEOUT_S: Final[float] = 5.0  # a call into the harness's loop; it only moves fds around


class LinkThread:
    """`start()` runs a `PtyLink` on a fresh loop in a daemon thread; `stop()` ends both."""

    def __init__(self, link_name: str | Path | None = None, *, name: str = "pty-link") -> None:
        self.link = PtyLink(link_name)
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LinkThread:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name=self._name,
                                        daemon=True)
        self._thread.start()
        if not ready.wait(CALL_TIMEOUT_S):
            raise RuntimeError("pty harness did not start")
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.run_until_complete(self.link.start())
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.link.stop())
            loop.close()

    def call(self, func: Callable[..., T], *args: Any) -> T:
        """Run `func(*args)` on the harness's loop and return its result."""
        if self._loop is None:
            raise RuntimeError("pty harness not started")

        async def run() -> T:
            return func(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(CALL_TIMEOUT_S)

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CALL_TIMEOUT_S)
        self._loop = self._thread = None

    # ---- the link's controls, from any thread --------------------------------------------
    @property
    def gateway_path(self) -> str:
        return self.link.gateway_path

    def gateway_speed(self) -> int | None:
        return self.link.gateway_speed()  # one tcgetattr: safe from any thread

    def open_device(self) -> int:
        return self.link.open_device()

    def unplug(self) -> None:
        self.call(self.link.unplug)

    def replug(self) -> None:
        self.call(self.link.replug)

    def inject(self, direction: Direction, fault: Fault) -> None:
        self.call(self.link.inject, direction, fault)

    def silence(self, direction: Direction, on: bool = True) -> None:
        self.call(self.link.silence, direction, on)


class DeviceThread:
    """A simulated device served by a thread of its own on the device side of a `LinkThread`
    pty: the life cycle every thread-served simulator shares (IEC 62056-21 meters, DSMR P1
    ports, wired M-Bus). A subclass implements `_serve()`, reading and writing `_fd` (blocking:
    select() says when to read, a write waits its turn) until `_stop` is set; the gateway
    opens `port_path`. Use as a context manager."""

    def __init__(self, name: str) -> None:
        # the harness keeps both ptys open: the gateway may close and reopen its side
        self.link = LinkThread(name=f"{name}-link").start()
        self._fd = self.link.open_device()
        os.set_blocking(self._fd, True)
        self.port_path = self.link.gateway_path
        self._buffer = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def _serve(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self.link.stop()
