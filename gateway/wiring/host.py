"""The running service as the composition root's wiring sees it, without importing it.

`gateway.app.service` imports the wiring (console, uplink) to start them; were the wiring to
import the service back, the two would form an import cycle. The wiring names what it reads of
the service here instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from board.interface import Board
from core.clock import Clock
from gateway.app.supervision import Supervisor
from gateway.config.loader import GatewayConfig
from gateway.console.logring import LogRing
from gateway.wiring.prepay import PrepayWiring
from gateway.wiring.protocols import MeterBus, PushSource
from storage.records import ReadingSet
from storage.store import Store

if TYPE_CHECKING:  # paho and the signing code load only where [uplink] is configured
    from uplink.service import Uplink


class Health(Protocol):
    @property
    def last_ok_ms(self) -> Mapping[str, int]: ...

    @property
    def last_error(self) -> Mapping[str, str]: ...


class ServiceView(Protocol):
    """The running `gateway.app.service.Service` as the wiring reads it (mypy checks the
    service against this where it hands itself over: `start_console`, `build_uplink`)."""

    restart_requested: bool

    @property
    def config(self) -> GatewayConfig: ...
    @property
    def board(self) -> Board: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def wall(self) -> Callable[[], float]: ...  # wall seconds of `clock` (the uplink's)
    @property
    def started_ms(self) -> int: ...
    @property
    def store(self) -> Store | None: ...
    @property
    def health(self) -> Health | None: ...
    @property
    def buses(self) -> Mapping[str, MeterBus]: ...
    @property
    def push_sources(self) -> list[PushSource]: ...
    @property
    def prepay(self) -> PrepayWiring | None: ...
    @property
    def uplink(self) -> Uplink | None: ...
    @property
    def log_ring(self) -> LogRing: ...
    @property
    def stop_event(self) -> asyncio.Event | None: ...
    @property
    def supervisor(self) -> Supervisor: ...

    async def read_now(self, meter_id: str) -> ReadingSet: ...

    def record_event(self, kind: str, meter_id: str | None, data: dict[str, Any],
                     severity: str = "info") -> None: ...

    def key_file(self) -> Path: ...

    def clock_synced(self) -> bool: ...
