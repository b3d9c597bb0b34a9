"""Builds one reader per configured bus, whatever its protocol, behind one small interface."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from board.interface import Board
from drivers.readings import Sample
from gateway.config import BusConfig, GatewayConfig, MeterConfig

LOGGER = logging.getLogger(__name__)


class MeterBus(Protocol):
    """What the scheduler needs from a bus: read one meter, its counters, close."""

    async def read(self, meter: MeterConfig) -> list[Sample]: ...

    def counters(self, meter_id: str) -> dict[str, int]: ...

    async def close(self) -> None: ...


class ModbusMeterBus:
    """Adapter from the gateway's meter config to drivers.modbus.master.ModbusBus."""

    def __init__(self, bus: BusConfig, board: Board) -> None:
        from drivers.modbus.master import ModbusBus, SerialBusSpec, TcpBusSpec

        gap_s = bus.inter_request_gap_ms / 1000
        spec: SerialBusSpec | TcpBusSpec
        if bus.kind == "tcp":
            spec = TcpBusSpec(bus.host, bus.tcp_port, inter_request_gap_s=gap_s)
        else:
            # pymodbus owns its transport and opens the configured path itself; a by-id link is
            # kept as is (not resolved once) so a re-plugged adapter on a new ttyUSBn is found.
            spec = SerialBusSpec(bus.port, baudrate=bus.baudrate, bytesize=bus.bytesize,
                                 parity=bus.parity, stopbits=bus.stopbits,
                                 inter_request_gap_s=gap_s)
        self._bus = ModbusBus(spec)

    async def read(self, meter: MeterConfig) -> list[Sample]:
        from drivers.modbus.profiles import get_profile

        return await self._bus.read_meter(
            meter.id, int(meter.address), get_profile(meter.profile),
            ct_ratio=meter.ct_ratio, vt_ratio=meter.vt_ratio, timeout_s=meter.timeout_ms / 1000)

    def counters(self, meter_id: str) -> dict[str, int]:
        return dict(self._bus.counters(meter_id))

    async def close(self) -> None:
        await self._bus.close()

    @property
    def driver(self) -> Any:
        return self._bus


def open_buses(config: GatewayConfig, board: Board) -> dict[str, MeterBus]:
    """A reader for every bus that has polled meters on it."""
    protocols: dict[str, str] = {}
    for meter in config.meters:
        protocols.setdefault(meter.bus, meter.protocol)
    buses: dict[str, MeterBus] = {}
    for bus in config.buses:
        protocol = protocols.get(bus.id)
        if protocol == "modbus":
            buses[bus.id] = ModbusMeterBus(bus, board)
        elif protocol is not None:
            LOGGER.warning("bus_protocol_not_wired", extra={"bus": bus.id, "protocol": protocol})
    return buses
