"""`BusDirectory` and `MeterKeys` over the running service's buses, until the protocol plugins
report typed counters and offer scan and keys as capabilities themselves.

Counter names differ per driver today; they are summed into the standard four here
(`gateway.console.ports.STANDARD_COUNTERS`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

from gateway.config.loader import GatewayConfig, MeterConfig
from gateway.console.api import ControlError, KeyInfo, ScanHit
from gateway.console.ports import BusInfo
from gateway.wiring.protocols import MeterBus, PushSource

MODBUS_ADDRESSES = range(1, 248)  # every unicast slave id (0 is broadcast, 248+ reserved)
SCAN_PROBE_TIMEOUT_S = 0.1  # a Modbus meter answers within ~50 ms; 247 ids stay under 40 s
COUNTERS_OK = {"modbus": "reads_ok", "iec62056": "reads_ok", "wmbus": "telegrams"}
COUNTERS_NOT_ERRORS = {"reads", "reads_ok", "values", "values_absent", "requests", "retries",
                       "skipped_backoff", "telegrams", "frames", "duplicates", "unknown",
                       "baud_fallbacks", "reconnects"}
COUNTERS_CRC = {"crc", "checksum", "bad_frames", "decode_errors"}
COUNTERS_TIMEOUT = {"timeout", "timeouts", "port_unavailable"}


class Buses(Protocol):
    @property
    def config(self) -> GatewayConfig: ...
    @property
    def buses(self) -> Mapping[str, MeterBus]: ...
    @property
    def push_sources(self) -> list[PushSource]: ...


def standard_counters(protocol: str, totals: Mapping[str, int]) -> dict[str, int]:
    """A driver's own counters as ok / timeouts / checksum / other."""
    ok = totals.get(COUNTERS_OK.get(protocol, "reads_ok"), 0)
    timeouts = sum(v for k, v in totals.items() if k in COUNTERS_TIMEOUT)
    crc = sum(v for k, v in totals.items() if k in COUNTERS_CRC)
    other = sum(v for k, v in totals.items() if k not in COUNTERS_NOT_ERRORS | COUNTERS_TIMEOUT
                | COUNTERS_CRC)
    return {"ok": ok, "timeouts": timeouts, "checksum": crc, "other": other}


class ServiceBuses:
    def __init__(self, service: Buses) -> None:
        self._service = service

    def _meters_on(self, bus_id: str) -> list[MeterConfig]:
        return [m for m in self._service.config.meters if m.bus == bus_id]

    def _receiver(self, bus_id: str) -> Any:
        for source in self._service.push_sources:
            if source.bus_id == bus_id and hasattr(source, "receiver"):
                return source.receiver
        return None

    def _raw_counters(self, bus_id: str, meters: list[MeterConfig]) -> list[Mapping[str, int]]:
        polled = self._service.buses.get(bus_id)
        if polled is not None:
            return [polled.counters(m.id) for m in meters]
        receiver = self._receiver(bus_id)
        return [receiver.counters()] if receiver is not None else []

    def buses(self) -> list[BusInfo]:
        infos = []
        for bus in self._service.config.buses:
            meters = self._meters_on(bus.id)
            totals: dict[str, int] = {}
            for counters in self._raw_counters(bus.id, meters):
                for name, count in counters.items():
                    totals[name] = totals.get(name, 0) + count
            protocol = meters[0].protocol if meters else ""
            infos.append(BusInfo(bus.id, protocol, self._can_scan(bus.id),
                                 standard_counters(protocol, totals)))
        return infos

    def meter_counters(self, meter_id: str) -> Mapping[str, int]:
        meter = self._service.config.meter(meter_id)
        polled = self._service.buses.get(meter.bus)
        if polled is None:
            return {}
        return standard_counters(meter.protocol, polled.counters(meter_id))

    def _can_scan(self, bus_id: str) -> bool:
        driver = getattr(self._service.buses.get(bus_id), "driver", None)
        return hasattr(driver, "scan") or self._receiver(bus_id) is not None

    async def scan(self, bus_id: str, seconds: int) -> list[ScanHit]:
        known = {str(m.address).upper(): m for m in self._meters_on(bus_id)}
        driver = getattr(self._service.buses.get(bus_id), "driver", None)
        if driver is not None and hasattr(driver, "scan"):
            # the driver's per-bus lock interleaves the probes with the scheduled polls
            found = await driver.scan(MODBUS_ADDRESSES, SCAN_PROBE_TIMEOUT_S)
            return [ScanHit(bus_id, str(a), known[str(a)].profile if str(a) in known else
                            "answers Modbus", known[str(a)].id if str(a) in known else None)
                    for a in found]
        receiver = self._receiver(bus_id)
        if receiver is None:
            raise ControlError(f"{bus_id}: scan works on Modbus and wireless M-Bus buses only")
        await asyncio.sleep(seconds)
        return [ScanHit(bus_id, h.meter, f"{h.manufacturer} type {h.device_type}, heard "
                        f"{h.count} x, {h.last_rssi_dbm} dBm", known[h.meter.upper()].id
                        if h.meter.upper() in known else None)
                for h in receiver.unknown_meters()]

    def key_ids(self) -> list[KeyInfo]:
        """The meter keys the push sources hold (live: a key set over the uplink shows)."""
        keys = []
        for source in self._service.push_sources:
            store, radio_ids = getattr(source, "keys", None), getattr(source, "radio_ids", None)
            if store is None or radio_ids is None:
                continue
            meter_of = {radio: meter for meter, radio in radio_ids.items()}
            keys += [KeyInfo(i, f"wmbus meter {meter_of.get(i, 'not configured')}",
                             meter_of.get(i)) for i in store.ids()]
        return keys
