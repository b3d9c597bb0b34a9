"""The one list of protocol plugins, and the buses opened from it.

Adding a protocol is one package under drivers/ with a `PLUGIN` (drivers/plugin.py), one line
in `PLUGINS` below and its section in docs/config.md: nothing else in gateway/ names a protocol
(tests/gateway/test_protocol_plugins.py holds that). Polled plugins give a `MeterBus` the
scheduler reads meter by meter; pushed ones a `PushSource` that hands readings over as the
meters send them. Serial ports are opened through the board (the one place that touches
devices) and handed to the plugins as a callable. The console's view of the opened buses is
gateway/wiring/bus_directory.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from board.interface import Board, BoardError, SerialSpec
from core.clock import Clock
from drivers.dlms.plugin import PLUGIN as DLMS
from drivers.dlms.push_plugin import PLUGIN as DLMS_PUSH
from drivers.errors import PortUnavailable
from drivers.iec102.plugin import PLUGIN as IEC102
from drivers.iec62056.p1_plugin import PLUGIN as DSMR
from drivers.iec62056.plugin import PLUGIN as IEC62056
from drivers.mbus_wired.plugin import PLUGIN as MBUS
from drivers.modbus.plugin import PLUGIN as MODBUS
from drivers.plugin import (
    Accept,
    BusView,
    Context,
    EventSink,
    MeterBus,
    MeterView,
    ProtocolPlugin,
    PushSource,
    SerialParams,
)
from drivers.wmbus.plugin import PLUGIN as WMBUS

__all__ = ["PLUGINS", "Accept", "EventSink", "MeterBus", "PushSource", "Site", "board_context",
           "open_buses", "plugin", "plugins"]


class Site(Protocol):
    """What `open_buses` reads of the config (gateway.config.loader.GatewayConfig): the config
    imports this module for the plugin list, so this module imports nothing of gateway/."""

    @property
    def buses(self) -> Sequence[BusView]: ...
    @property
    def meters(self) -> Sequence[MeterView]: ...
    @property
    def storage(self) -> Any: ...  # .path: the database, beside which default files live


PLUGINS: tuple[ProtocolPlugin, ...] = (MODBUS, IEC62056, DSMR, WMBUS, IEC102, DLMS, MBUS,
                                       DLMS_PUSH)


def plugins() -> tuple[ProtocolPlugin, ...]:
    """The plugins in use (read at call time, so a test can add one to `PLUGINS`)."""
    return PLUGINS


def plugin(name: str) -> ProtocolPlugin | None:
    return next((p for p in PLUGINS if p.name == name), None)


RecordsUntil = Callable[[str, str], int | None]  # (meter id, series) -> newest held, ms


def _none_held(meter_id: str, series: str) -> int | None:
    return None


def _not_synced() -> bool:
    return False


def board_context(board: Board, events: EventSink, data_dir: Path, clock: Clock,
                  records_until: RecordsUntil = _none_held,
                  clock_synced: Callable[[], bool] = _not_synced) -> Context:
    """What a plugin gets to open a bus: the board's serial opener, events, clock, data dir,
    and how far the gateway holds each meter's records."""
    def open_serial(params: SerialParams) -> Any:
        spec = SerialSpec(params.port, params.baudrate, bytesize=params.bytesize,
                          parity=params.parity, stopbits=params.stopbits,
                          rs485=dict(params.rs485))
        try:
            # a descriptor: the drivers read it through the transport kit, which closes it
            return board.open_serial_fd(spec)
        except BoardError as exc:  # a missing adapter is the driver's PortUnavailable
            raise PortUnavailable(str(exc)) from exc
    return Context(open_serial, events, clock, data_dir, records_until, clock_synced)


def open_buses(config: Site, board: Board, events: EventSink, clock: Clock,
               records_until: RecordsUntil = _none_held,
               clock_synced: Callable[[], bool] = _not_synced,
               ) -> tuple[dict[str, MeterBus], list[PushSource]]:
    """A reader for every bus that has meters on it (config validation made one protocol each),
    on the composition root's one clock (no default: a test passes its FakeClock here)."""
    context = board_context(board, events, config.storage.path.parent, clock, records_until,
                            clock_synced)
    polled: dict[str, MeterBus] = {}
    pushed: list[PushSource] = []
    for bus in config.buses:
        meters = [m for m in config.meters if m.bus == bus.id]
        found = plugin(meters[0].protocol) if meters else None
        if found is None:
            continue
        if found.open_polled is not None and found.kind == "polled":
            polled[bus.id] = found.open_polled(bus, context)
        elif found.open_pushed is not None:
            pushed.append(found.open_pushed(bus, meters, context))
    return polled, pushed
