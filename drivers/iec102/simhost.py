"""Where the simulated meter (sim.SimMeter) answers: in process as a transport kit stream
(`SimStream`, for unit tests of the real session), on the pty harness (`PtySim`: the gateway
opens `port_path` as a serial port) and on TCP (`serve_tcp`: a meter behind a serial server).

Each host cuts the master's bytes into FT1.2 frames (junk dropped to the next start byte, as a
meter waits for the next frame) and writes the meter's answer back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import threading
from typing import Final

from drivers import ft12
from drivers.iec102 import link
from drivers.iec102.sim import SimMeter
from drivers.transport.simthread import LinkThread
from drivers.transport.stream import ByteStream, LineSettings

POLL_S: Final = 0.05
START_TIMEOUT_S: Final = 5.0


class FrameCutter:
    """Bytes in, whole request frames out."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer.extend(chunk)
        frames = []
        while self._buffer:
            outcome = ft12.find_frame(bytes(self._buffer), link.ADDRESS_WIDTH)
            if isinstance(outcome, ft12.NeedMore):
                break
            size = outcome.skip if isinstance(outcome, ft12.Invalid) else outcome.size
            frame = bytes(self._buffer[:size])
            del self._buffer[:size]
            if isinstance(outcome, ft12.Found):
                frames.append(frame)
        return frames


class SimStream(ByteStream):
    """A stream whose far end is a SimMeter: every write is answered at once."""

    def __init__(self, meter: SimMeter, *, name: str = "iec102-sim") -> None:
        super().__init__(name=name, protocol="iec102")
        self.sim = meter
        self._cutter = FrameCutter()
        self._settings = LineSettings()
        self.writes: list[bytes] = []

    @property
    def settings(self) -> LineSettings:
        return self._settings

    def set_line(self, settings: LineSettings) -> None:
        self._settings = settings

    async def _send(self, data: bytes) -> None:
        self.writes.append(data)
        for frame in self._cutter.feed(data):
            answer = self.sim.exchange(frame)
            if answer:
                self._received(answer)

    def _shutdown(self) -> None:
        return None


class PtySim:
    """A SimMeter on the pty harness, served from a thread; a context manager."""

    def __init__(self, meter: SimMeter) -> None:
        self.meter = meter
        self.link = LinkThread(name="iec102-sim-link").start()
        self._fd = self.link.open_device()
        self.port_path = self.link.gateway_path
        self._stop = threading.Event()
        self._lock = threading.Lock()   # the meter is shared with a test's thread
        self._thread = threading.Thread(target=self._serve, name="iec102-sim", daemon=True)

    def __enter__(self) -> PtySim:
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

    def change(self, **faults: object) -> None:
        """Set meter attributes (faults) safely from another thread."""
        with self._lock:
            for name, value in faults.items():
                setattr(self.meter, name, value)

    def _serve(self) -> None:
        cutter = FrameCutter()
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], POLL_S)
            if not ready:
                continue
            try:
                chunk = os.read(self._fd, 4096)
            except (BlockingIOError, OSError):
                continue
            for frame in cutter.feed(chunk):
                with self._lock:
                    answer = self.meter.exchange(frame)
                if answer:
                    with contextlib.suppress(OSError):
                        os.write(self._fd, answer)


class TcpSim:
    """A TCP server for the meter (one connection at a time is what a serial server gives);
    `await TcpSim.start(meter)`, then `port`, and `await close()`."""

    def __init__(self, meter: SimMeter) -> None:
        self.meter = meter
        self.server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @classmethod
    async def start(cls, meter: SimMeter, host: str = "127.0.0.1", port: int = 0) -> TcpSim:
        sim = cls(meter)
        sim.server = await asyncio.start_server(sim._handle, host, port)
        return sim

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        cutter = FrameCutter()
        try:
            while chunk := await reader.read(4096):
                for frame in cutter.feed(chunk):
                    answer = self.meter.exchange(frame)
                    if answer:
                        writer.write(answer)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            if task is not None:
                self._handlers.discard(task)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)


class TcpSimThread:
    """A TcpSim on its own event loop in a daemon thread, for a test that blocks (the real
    gateway as a child process); a context manager with `port`."""

    def __init__(self, meter: SimMeter) -> None:
        self.meter = meter
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="iec102-tcp-sim",
                                        daemon=True)
        self._sim: TcpSim | None = None

    def __enter__(self) -> TcpSimThread:
        self._thread.start()
        self._sim = asyncio.run_coroutine_threadsafe(
            TcpSim.start(self.meter), self._loop).result(START_TIMEOUT_S)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sim is not None:
            asyncio.run_coroutine_threadsafe(self._sim.close(), self._loop).result(
                START_TIMEOUT_S)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(START_TIMEOUT_S)
        self._loop.close()

    @property
    def port(self) -> int:
        assert self._sim is not None
        return self._sim.port
