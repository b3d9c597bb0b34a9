"""Service-side operations on the gateway and its meters: status, meters, read, buses, scan."""

from __future__ import annotations

from decimal import Decimal
from importlib import metadata

from drivers.errors import DriverError
from gateway.config.loader import MeterConfig
from gateway.console.api import (
    BusCounters,
    ControlError,
    GatewayStatus,
    MeterReading,
    MeterRow,
    Quantity,
    ScanHit,
)
from gateway.console.operations import Role
from gateway.console.ops_common import OpsBase, money, utc
from gateway.wiring.protocols import plugins
from storage.errors import StorageError
from storage.records import ReadingSet


def _version() -> str:
    try:
        return metadata.version("meter-gateway")
    except metadata.PackageNotFoundError:
        return "0.1.0"


def _reading(meter_id: str, reading: ReadingSet) -> MeterReading:
    return MeterReading(meter_id, utc(reading.ts_ms),
                        [Quantity(v.quantity, v.value, v.unit) for v in reading.values])


class MeterOps(OpsBase):
    async def status(self) -> GatewayStatus:
        usage = self._store().usage()  # on the loop: the loop owns the store
        now_ms = self.ports.clock.wall_ms()
        return GatewayStatus(
            gateway_id=self.ports.config.gateway_id, version=_version(),
            uptime_s=(now_ms - self.ports.started_ms) // 1000, clock=utc(now_ms),
            storage_used_bytes=usage.bytes_used, storage_limit_bytes=usage.max_bytes,
            uplink_state=self._uplink_state(), uplink_backlog=usage.undelivered,
            buses=self._bus_counters())

    def _uplink_state(self) -> str:
        uplink = self.ports.uplink
        if uplink is None:
            return "not configured"
        state = "connected" if uplink.connected() else "disconnected"
        error = uplink.last_error()
        return f"{state} ({error})" if error else state

    def _bus_counters(self) -> list[BusCounters]:
        rows = []
        for bus in self.ports.buses.buses():
            count = bus.counters
            rows.append(BusCounters(bus.bus_id, count.get("ok", 0), count.get("timeouts", 0),
                                    count.get("checksum", 0), count.get("other", 0)))
        return rows

    async def meters(self) -> list[MeterRow]:
        # small reads on the loop: a worker thread here hung the shutdown
        reader = self.ports.meters
        rows = []
        for meter in self.ports.config.meters:
            last_ms = reader.last_ok_ms(meter.id)
            if last_ms is None:
                last = reader.last_stored(meter.id)
                last_ms = last.ts_ms if last else None
            credit, currency = self._balance(meter.id)
            rows.append(MeterRow(
                meter.id, meter.protocol, meter.bus, None if last_ms is None else utc(last_ms),
                reader.last_error(meter.id), credit, currency))
        return rows

    def _balance(self, meter_id: str) -> tuple[Decimal | None, str]:
        prepay = self.ports.prepay
        if prepay is None or not prepay.prepaid(meter_id):
            return None, ""
        try:
            balance = prepay.account(meter_id).balance
        except StorageError as exc:
            raise ControlError(f"{meter_id}: reading the ledger failed ({exc}); check 'log'"
                               ) from None
        return money(balance), prepay.currency

    async def read_meter(self, meter_id: str) -> MeterReading:
        meter = self._meter(meter_id)
        if not self.ports.meters.polled(meter_id):
            return self._last_pushed(meter)
        try:
            reading = await self.ports.meters.read_now(meter_id)
        except DriverError as exc:
            raise ControlError(f"{meter_id} did not answer ({exc}): check the wiring, the "
                               f"address ({meter.address}) and the bus settings") from None
        return _reading(meter_id, reading)

    def _last_pushed(self, meter: MeterConfig) -> MeterReading:
        last = self.ports.meters.last_stored(meter.id)
        if last is None:
            hint = next((b.hint for b in self.ports.buses.buses() if b.bus_id == meter.bus), "")
            raise ControlError(f"{meter.id} ({meter.protocol}) sends on its own and nothing was "
                               f"received yet{': ' + hint if hint else ''}")
        return _reading(meter.id, last)

    async def bus_names(self) -> list[str]:
        return [bus.id for bus in self.ports.config.buses]

    async def scan_bus(self, bus: str, seconds: int) -> list[ScanHit]:
        if bus not in {b.id for b in self.ports.config.buses}:
            raise ControlError(f"no bus {bus!r}: one of {', '.join(await self.bus_names())}")
        return await self.ports.buses.scan(bus, seconds)

    async def protocol_command(self, command: str, bus: str, args: list[str],
                               role: str, user: str) -> list[str]:
        if not any(c.name == command for p in plugins() for c in p.console_commands):
            raise ControlError(f"no protocol has a command {command[:40]!r}; type 'help'")
        declared = self.ports.buses.console_command(bus, command)  # the bus's own protocol's
        try:
            caller, needs = Role.parse(role), Role.parse(declared.role)
        except ValueError as exc:
            raise ControlError(str(exc)) from None
        if caller < needs:
            raise ControlError(f"{command} needs the {needs.name.lower()} role; you are "
                               f"{caller.name.lower()}")
        if not declared.changes:
            return await self.ports.buses.command(bus, command, args)
        try:  # it changes the device: audited here, whichever client asked
            lines = await self.ports.buses.command(bus, command, args)
        except ControlError as exc:
            self._audit(user, command, [bus, *args], f"error: {exc}")
            raise
        self._audit(user, command, [bus, *args], "ok")
        return lines

    def _audit(self, user: str, command: str, args: list[str], outcome: str) -> None:
        self.ports.events("audit", None, {"user": user, "command": command,
                                          "arguments": args, "outcome": outcome})
