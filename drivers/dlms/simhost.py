"""The simulated DLMS meter on its own event-loop thread, for tests that run the real gateway
as a process (hil/): HDLC on a pty or the wrapper on a TCP port, over the real clock.

    with SimHost.hdlc(objects_settings) as host:   # host.port_path: what the gateway opens
        ...
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, TypeVar

from drivers.dlms.hdlc import Address
from drivers.dlms.server import CosemServer, ServerSettings
from drivers.dlms.sim import HdlcServerLink, LinkFaults, PtyMeter, TcpMeter
from drivers.dlms.sim_objects import CAPTURE_PERIOD_S, SimObjects

START_TIMEOUT_S: Final = 10.0
METER_ADDRESS: Final = Address(1, 17, 2)
T = TypeVar("T")


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class SimHost:
    """One simulated meter served from a daemon thread; `call(fn)` runs on its loop."""

    def __init__(self, kind: str, settings: ServerSettings | None = None,
                 address: Address = METER_ADDRESS, *,
                 capture_period_s: int = CAPTURE_PERIOD_S) -> None:
        if kind not in ("hdlc", "tcp"):
            raise ValueError("kind is hdlc or tcp")
        self.kind = kind
        self.objects = SimObjects(wall_ms, capture_period_s=capture_period_s)
        self.app = CosemServer(self.objects, settings or ServerSettings())
        self.far = HdlcServerLink(self.app, address) if kind == "hdlc" else None
        self._meter: PtyMeter | TcpMeter | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def port_path(self) -> str:
        assert isinstance(self._meter, PtyMeter)
        return self._meter.gateway_path

    @property
    def faults(self) -> LinkFaults:
        """The link faults of the meter (HDLC or TCP): silence it, spoil its frames."""
        if self.far is not None:
            return self.far.faults
        assert isinstance(self._meter, TcpMeter)
        return self._meter.faults

    @property
    def port(self) -> int:
        assert isinstance(self._meter, TcpMeter)
        return self._meter.port

    def start(self) -> SimHost:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True,
                                        name=f"dlms-sim-{self.kind}")
        self._thread.start()
        if not ready.wait(START_TIMEOUT_S):
            raise RuntimeError("DLMS simulator did not start")
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        meter: PtyMeter | TcpMeter = (PtyMeter(self.far) if self.far is not None
                                      else TcpMeter(self.app))
        loop.run_until_complete(meter.start())
        self._meter = meter
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(meter.stop())
            loop.close()

    def call(self, func: Callable[..., T], *args: Any) -> T:
        """`func(*args)` on the simulator's loop (its state is that loop's)."""
        if self._loop is None:
            raise RuntimeError("simulator not started")

        async def run() -> T:
            return func(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(START_TIMEOUT_S)

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(START_TIMEOUT_S)
        self._loop = self._thread = None

    def __enter__(self) -> SimHost:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
