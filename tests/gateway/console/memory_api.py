"""An in-memory ControlApi for console tests (the real service implements it in gateway/).

A declared operation this fake does not implement answers as a gateway without that component
does ("... not available on this gateway"), so a new operation needs no change here unless a
test wants its result.
"""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway.console.api import (
    OPERATIONS,
    BusCounters,
    ConfigEntry,
    ConfigProblem,
    ControlError,
    CreditInfo,
    ExportResult,
    FlushResult,
    GatewayStatus,
    KeyInfo,
    LogLine,
    MeterReading,
    MeterRow,
    Quantity,
    RelayState,
    ScanHit,
)

T0 = datetime(2026, 11, 23, 17, 0, 0, tzinfo=UTC)
METERS = {
    "shop-12": ("modbus", "rs485-1", "sdm630 id 12"),
    "shop-14": ("modbus", "rs485-1", "sdm630 id 14"),
    "flat-3": ("wmbus", "radio", "kamstrup 12345678"),
}


class InMemoryApi:
    """Holds a little state so commands have visible effects; no protocol is faked."""

    def __init__(self) -> None:
        self.credit_by_meter = {"shop-12": Decimal("12.50"), "shop-14": Decimal("0.00")}
        self.relay = {"shop-12": True, "shop-14": False}
        self.emergency_on: set[str] = set()
        self.config = {"gateway.id": '"gw-test-01"', "uplink.host": '"mqtt.example.net"'}
        self.log: list[LogLine] = []
        self.audits: list[tuple[str, str, list[str], str]] = []
        self.clock = T0
        self.restarts = 0
        self.backlog = 7
        self.protocols = {protocol for protocol, _bus, _what in METERS.values()}
        self.traced: set[str] = set()
        self._add_log("info", "service_started", None, "version=0.1.0")

    def __getattr__(self, name: str) -> Any:
        if name not in OPERATIONS:
            raise AttributeError(name)
        op = OPERATIONS[name]

        async def unavailable(*args: Any, **kwargs: Any) -> Any:
            op.bind(args, kwargs)  # a wrong call is still a TypeError, as on the real service
            raise ControlError(f"{name} is not available on this gateway")
        return unavailable

    def _add_log(self, level: str, event: str, meter: str | None, fields: str) -> None:
        self.log.append(LogLine(len(self.log) + 1, self.clock, level, event, meter, fields))

    def _meter(self, meter_id: str) -> str:
        if meter_id not in METERS:
            raise ControlError(f"no meter {meter_id!r}: type 'meters' for the list")
        return meter_id

    def _prepaid(self, meter_id: str) -> str:
        if self._meter(meter_id) not in self.credit_by_meter:
            raise ControlError(f"{meter_id} is not a prepaid meter")
        return meter_id

    async def status(self) -> GatewayStatus:
        buses = [BusCounters("rs485-1", 1204, 3, 1, 0), BusCounters("radio", 310, 0, 12, 2)]
        return GatewayStatus("gw-test-01", "0.1.0", 93784, self.clock, 3 * 2**20, 2**30,
                             "connected", self.backlog, buses)

    async def meters(self) -> list[MeterRow]:
        return [
            MeterRow(m, proto, bus, T0 if m != "flat-3" else None,
                     None if m != "flat-3" else "no telegram for 600 s",
                     self.credit_by_meter.get(m), "EUR" if m in self.credit_by_meter else "")
            for m, (proto, bus, _) in METERS.items()
        ]

    async def read_meter(self, meter_id: str) -> MeterReading:
        if meter_id == "bug":  # stands for a bug in the service's implementation
            raise RuntimeError("unexpected failure inside the service")
        if self._meter(meter_id) == "flat-3":
            raise ControlError("flat-3 did not answer in 5 s: check the antenna and meter key")
        quantities = [
            Quantity("import_active_energy", Decimal("12345.67"), "kWh"),
            Quantity("voltage_l1", Decimal("230.1"), "V"),
            Quantity("serial_number", "21030042", ""),
        ]
        return MeterReading(meter_id, self.clock, quantities)

    async def bus_names(self) -> list[str]:
        return ["rs485-1", "radio"]

    async def scan_bus(self, bus: str, seconds: int) -> list[ScanHit]:
        if bus not in ("rs485-1", "radio"):
            raise ControlError(f"no bus {bus!r}: buses are rs485-1, radio")
        return [ScanHit(bus, "12", "SDM630", "shop-12"), ScanHit(bus, "31", "unknown", None)]

    async def set_relay(self, meter_id: str, closed: bool) -> RelayState:
        self.relay[self._prepaid(meter_id)] = closed
        return RelayState(meter_id, closed, self.clock)

    async def credit(self, meter_id: str) -> CreditInfo:
        meter_id = self._prepaid(meter_id)
        return CreditInfo(meter_id, self.credit_by_meter[meter_id], "EUR",
                          meter_id in self.emergency_on, Decimal("5.00"), self.relay[meter_id])

    async def topup(self, meter_id: str, amount: Decimal, reference: str) -> CreditInfo:
        self.credit_by_meter[self._prepaid(meter_id)] += amount
        return await self.credit(meter_id)

    async def emergency(self, meter_id: str) -> CreditInfo:
        self.emergency_on.add(self._prepaid(meter_id))
        return await self.credit(meter_id)

    async def log_lines(self, after_seq: int | None, limit: int) -> list[LogLine]:
        if after_seq is None:
            return self.log[-limit:]
        return [line for line in self.log if line.seq > after_seq][:limit]

    async def log_trace(self, protocol: str, on: bool) -> list[str]:
        if protocol not in self.protocols:
            raise ControlError(f"no bus of protocol {protocol!r} here")
        self.traced = (self.traced | {protocol}) if on else (self.traced - {protocol})
        return sorted(self.traced)

    async def config_show(self) -> list[ConfigEntry]:
        return [ConfigEntry(k, v) for k, v in sorted(self.config.items())]

    async def config_check(self) -> list[ConfigProblem]:
        return []

    async def config_set(self, key: str, value: str) -> ConfigEntry:
        if key not in self.config:
            raise ControlError(f"unknown key {key!r}: 'config show' lists the keys")
        self.config[key] = value
        return ConfigEntry(key, value)

    async def keys_show(self) -> list[KeyInfo]:
        return [KeyInfo("k-uplink-1", "uplink signing", None), KeyInfo("k-wm-3", "wmbus", "flat-3")]

    async def uplink_flush(self) -> FlushResult:
        sent, self.backlog = self.backlog, 0
        return FlushResult(sent, 0)

    async def set_time(self, when: datetime) -> datetime:
        self.clock = when
        return when

    async def restart(self) -> str:
        self.restarts += 1
        return "Restarting the service."

    async def export(self, directory: str, start: date, end: date) -> ExportResult:
        folder = Path(directory)
        if not folder.is_dir():
            raise ControlError(f"{directory} is not a directory: plug in the stick and mount it")
        path = folder / f"readings_{start}_{end}.csv"
        with path.open("w", newline="") as handle:
            csv.writer(handle).writerow(["meter", "ts", "quantity", "value", "unit"])
        return ExportResult(directory, [path.name], 0, 0, 0)

    async def record_audit(self, user: str, command: str, args: list[str], outcome: str) -> None:
        self.audits.append((user, command, args, outcome))
        self._add_log("info", "audit", None, f"user={user} command={command} outcome={outcome}")
