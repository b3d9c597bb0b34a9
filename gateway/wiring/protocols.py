"""Builds one reader per configured bus, whatever its protocol, behind two small interfaces.

Polled protocols (Modbus, IEC 62056-21) give a `MeterBus` the scheduler reads meter by meter;
push protocols (DSMR P1, wireless M-Bus) give a `PushSource` that hands readings over as the
meters send them. Serial ports are opened through the board (the one place that touches devices).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from board.interface import Board, BoardError, SerialSpec
from drivers.errors import DriverError, PortUnavailable
from drivers.readings import Sample
from gateway.config.loader import BusConfig, GatewayConfig, MeterConfig

LOGGER = logging.getLogger(__name__)

# A push port that failed (unplugged adapter) is reopened after this pause, growing to the cap.
PUSH_REOPEN_MIN_S = 2.0
PUSH_REOPEN_MAX_S = 60.0

EventSink = Callable[[str, str | None, dict[str, Any], str], None]  # kind, meter, data, severity
Accept = Callable[[str, list[Sample], int], None]  # meter id, samples, ts_ms


class MeterBus(Protocol):
    """What the scheduler needs from a bus: read one meter, its counters, close."""

    async def read(self, meter: MeterConfig) -> list[Sample]: ...

    def counters(self, meter_id: str) -> dict[str, int]: ...

    async def close(self) -> None: ...


class PushSource(Protocol):
    bus_id: str

    async def run(self, accept: Accept) -> None: ...


def _opener(board: Board, spec: SerialSpec) -> Any:
    """Open a port through the board; a missing adapter is the driver's PortUnavailable."""
    try:
        return board.open_serial(spec, 0)
    except BoardError as exc:
        raise PortUnavailable(str(exc)) from exc


class ModbusMeterBus:
    """Adapter from the gateway's meter config to drivers.modbus.master.ModbusBus."""

    def __init__(self, bus: BusConfig, board: Board, events: EventSink | None = None) -> None:
        from drivers.modbus.master import ModbusBus, SerialBusSpec, TcpBusSpec
        from drivers.transport.serial import RtsDirection

        gap_s = bus.inter_request_gap_ms / 1000
        spec: SerialBusSpec | TcpBusSpec
        if bus.kind == "tcp":
            spec = TcpBusSpec(bus.host, bus.tcp_port, inter_request_gap_s=gap_s)
        else:
            spec = SerialBusSpec(bus.port, baudrate=bus.baudrate, bytesize=bus.bytesize,
                                 parity=bus.parity, stopbits=bus.stopbits,
                                 inter_request_gap_s=gap_s, rts=RtsDirection.from_rs485(bus.rs485))
        # the board opens the port at every (re)connect: a by-id link is resolved then, so a
        # re-plugged adapter on a new ttyUSBn is found
        serial = SerialSpec(bus.port, bus.baudrate, bus.bytesize, bus.parity, bus.stopbits,
                            dict(bus.rs485))
        self.driver = ModbusBus(spec, open_fd=lambda: board.open_serial_fd(serial),
                                on_event=events)  # e.g. a register "not available"

    async def read(self, meter: MeterConfig) -> list[Sample]:
        from drivers.modbus.profiles import get_profile

        return await self.driver.read_meter(
            meter.id, int(meter.address), get_profile(meter.profile),
            ct_ratio=meter.ct_ratio, vt_ratio=meter.vt_ratio, timeout_s=meter.timeout_ms / 1000)

    def counters(self, meter_id: str) -> dict[str, int]:
        return dict(self.driver.counters(meter_id))

    async def close(self) -> None:
        await self.driver.close()


class Iec62056MeterBus:
    """Optical / current-loop meters read one after the other, with baud switching."""

    def __init__(self, bus: BusConfig, board: Board, events: EventSink) -> None:
        from drivers.iec62056.reader import Iec62056Bus

        def open_port(baud: int) -> Any:
            return _opener(board, SerialSpec(bus.port, baud, bytesize=7, parity="E",
                                             stopbits=1, rs485=dict(bus.rs485)))

        def drifted(meter_id: str, drift_s: int) -> None:
            events("meter_clock_drift", meter_id, {"drift_s": drift_s}, "warning")

        self.driver = Iec62056Bus(open_port, echo=bus.echo, name=bus.id, on_clock_drift=drifted)

    async def read(self, meter: MeterConfig) -> list[Sample]:
        return await self.driver.read_meter(meter.id, str(meter.address), meter.options,
                                            meter.timeout_ms / 1000)

    def counters(self, meter_id: str) -> dict[str, int]:
        return dict(self.driver.counters(meter_id))

    async def close(self) -> None:
        await self.driver.close()


def dsmr_sub_meters(meter: MeterConfig) -> dict[int, str]:
    """The P1 meter's `mbus_meters`: M-Bus channel -> id of the gas / water / heat meter on it."""
    return {int(channel): str(sub_id)
            for channel, sub_id in (meter.options.get("mbus_meters") or {}).items()}


class DsmrSource:
    """A DSMR P1 port: the meter pushes a telegram every 1-10 s; one meter per port, plus the
    sub-meters on its M-Bus channels, each stored under its own configured meter id."""

    def __init__(self, bus: BusConfig, meter: MeterConfig, board: Board) -> None:
        self.bus_id = bus.id
        self._meter_id = meter.id
        self._sub_meters = dsmr_sub_meters(meter)  # M-Bus channel -> meter id
        self._utc_offset_min = int(meter.options.get("utc_offset_min", 60))
        self._spec = SerialSpec(bus.port, bus.baudrate, bytesize=bus.bytesize,
                                parity=bus.parity, stopbits=bus.stopbits)
        self._board = board

    async def run(self, accept: Accept) -> None:
        from drivers.iec62056.p1 import telegrams

        pause = PUSH_REOPEN_MIN_S
        while True:
            try:
                port = _opener(self._board, self._spec)
                try:
                    async for telegram in telegrams(port, name=self.bus_id, meter=self._meter_id,
                                                    utc_offset_min=self._utc_offset_min,
                                                    channels=self._sub_meters):
                        accept(self._meter_id, list(telegram.mapped.samples), _now_ms())
                        for sub in telegram.submeters:
                            # at the capture time the sub-meter gave, not the telegram's arrival
                            accept(self._sub_meters[sub.channel], list(sub.samples), sub.ts_ms)
                        pause = PUSH_REOPEN_MIN_S
                finally:
                    port.close()
            except DriverError as exc:
                LOGGER.warning("p1_port_failed", extra={"bus": self.bus_id,
                                                        "meter": self._meter_id,
                                                        "reason": str(exc), "retry_s": pause})
            await asyncio.sleep(pause)
            pause = min(pause * 2, PUSH_REOPEN_MAX_S)


class WmbusSource:
    """A wireless M-Bus dongle: decoded telegrams of the configured meters become readings."""

    def __init__(self, bus: BusConfig, meters: list[MeterConfig], board: Board,
                 events: EventSink, key_file: Path) -> None:
        from drivers.wmbus.keys import KeyStore
        from drivers.wmbus.receiver import DONGLE_BAUD, WmbusReceiver
        from drivers.wmbus.receiver import MeterConfig as RadioMeter

        self.bus_id = bus.id
        self._port = bus.port
        self._events = events
        self._by_radio_id = {str(m.address).upper(): m.id for m in meters}
        radio = {str(m.address).upper(): RadioMeter(m.options.get("manufacturer") or None,
                                                    m.options.get("device_type"))
                 for m in meters}
        spec = SerialSpec(bus.port, DONGLE_BAUD[bus.dongle])
        self.keys = KeyStore(key_file)  # the receiver looks keys up live: a new key applies at once
        self.radio_ids = {m.id: str(m.address).upper() for m in meters}
        self.receiver = WmbusReceiver(lambda: _opener(board, spec), bus.dongle,
                                      bus.link_mode or "T1", self.keys, radio)

    async def run(self, accept: Accept) -> None:
        relay = asyncio.create_task(self._relay_events())
        receive = asyncio.create_task(self._receive(accept))
        try:
            done, _ = await asyncio.wait({relay, receive}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # either one failing fails the source: the supervisor restarts it
        finally:
            relay.cancel()
            receive.cancel()
            await asyncio.gather(relay, receive, return_exceptions=True)
            await self.receiver.close()

    async def _receive(self, accept: Accept) -> None:
        # a dongle missing at start (USB enumerating after the service) is waited for
        async for telegram in self.receiver.telegrams(wait_for_port=True):
            meter_id = self._by_radio_id.get(telegram.meter.upper())
            if meter_id is not None:
                accept(meter_id, list(telegram.samples), telegram.ts_ms)

    async def _relay_events(self) -> None:
        while True:
            event = await self.receiver.events.get()
            if event.kind == "port_unavailable":  # the name any bus uses for a missing port
                self._events("port_unavailable", None, {"bus": self.bus_id, "port": self._port,
                                                        "detail": event.detail}, "warning")
                continue
            meter_id = self._by_radio_id.get((event.meter or "").upper(), event.meter)
            self._events(f"wmbus_{event.kind}", meter_id, {"detail": event.detail}, "warning")


def open_buses(config: GatewayConfig, board: Board, events: EventSink
               ) -> tuple[dict[str, MeterBus], list[PushSource]]:
    """A reader for every bus that has meters on it (config validation made one protocol each)."""
    on_bus: dict[str, list[MeterConfig]] = {}
    for meter in config.meters:
        on_bus.setdefault(meter.bus, []).append(meter)
    polled: dict[str, MeterBus] = {}
    pushed: list[PushSource] = []
    for bus in config.buses:
        meters = on_bus.get(bus.id, [])
        protocol = meters[0].protocol if meters else None
        if protocol == "modbus":
            polled[bus.id] = ModbusMeterBus(bus, board, events)
        elif protocol == "iec62056":
            polled[bus.id] = Iec62056MeterBus(bus, board, events)
        elif protocol == "dsmr":
            pushed.append(DsmrSource(bus, meters[0], board))
        elif protocol == "wmbus":
            key_file = Path(bus.key_file) if bus.key_file else \
                config.storage.path.parent / "wmbus-keys.json"
            pushed.append(WmbusSource(bus, meters, board, events, key_file))
    return polled, pushed


def _now_ms() -> int:
    return int(time.time() * 1000)
