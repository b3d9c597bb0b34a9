"""What the console needs from the running service: `ControlApi` and the plain data it returns.

The service implements `ControlApi`; the console only ever talks to this protocol, locally (the
serial console inside the service) or through the control socket (`gateway.console.socket`). Every
operation raises `ControlError` with a message that tells the technician what to do next; an
operation whose component is not wired on this gateway raises
`ControlError("... not available on this gateway")`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from core.errors import MeterGatewayError


class ControlError(MeterGatewayError):
    """An operation failed; the message says what failed and what to do next."""


class Role(enum.IntEnum):
    """Console roles; a higher role may do everything a lower one may."""

    VIEWER = 1
    TECHNICIAN = 2
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(r.name.lower() for r in cls)
            raise ValueError(f"unknown role {text!r}: use one of {names}") from None


@dataclass(frozen=True, slots=True)
class BusCounters:
    bus: str
    frames_ok: int
    timeouts: int
    crc_errors: int
    other_errors: int


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    gateway_id: str
    version: str
    uptime_s: int
    clock: datetime
    storage_used_bytes: int
    storage_limit_bytes: int | None
    uplink_state: str  # "connected" | "disconnected" | "not configured" ...
    uplink_backlog: int  # outbox rows not yet acknowledged
    buses: list[BusCounters] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MeterRow:
    meter_id: str
    protocol: str
    bus: str
    last_reading: datetime | None
    last_error: str | None
    credit: Decimal | None  # None: not a prepaid meter
    currency: str = ""


@dataclass(frozen=True, slots=True)
class Quantity:
    quantity: str
    value: Decimal | str
    unit: str


@dataclass(frozen=True, slots=True)
class MeterReading:
    meter_id: str
    read_at: datetime
    quantities: list[Quantity]


@dataclass(frozen=True, slots=True)
class ScanHit:
    """A device found on a bus: a Modbus slave id or a wireless M-Bus sender."""

    bus: str
    address: str  # Modbus slave id "17", or M-Bus "MAN-12345678-v1-t7"
    detail: str  # e.g. manufacturer / model / signal strength, free text
    known_meter: str | None  # configured meter id, None when unknown


@dataclass(frozen=True, slots=True)
class RelayState:
    meter_id: str
    closed: bool  # True: supply on
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class CreditInfo:
    meter_id: str
    balance: Decimal
    currency: str
    emergency_active: bool
    emergency_available: Decimal
    relay_closed: bool | None


@dataclass(frozen=True, slots=True)
class LogLine:
    seq: int  # increasing; `log -f` asks for lines after the last seq it saw
    ts: datetime
    level: str
    event: str
    meter: str | None
    fields: str  # the other fields, already rendered as "k=v k=v"


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    key: str  # dotted, e.g. "uplink.host"
    value: str  # TOML literal; secrets shown as "<hidden>"


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    key: str
    message: str


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_id: str
    purpose: str  # e.g. "uplink signing", "wmbus meter shop-12"
    meter: str | None


@dataclass(frozen=True, slots=True)
class FlushResult:
    sent: int
    remaining: int


@dataclass(frozen=True, slots=True)
class ExportResult:
    directory: str
    files: list[str]
    readings: int
    events: int
    ledger_rows: int


class ControlApi(Protocol):
    """Operations of the running service offered to the console (all raise ControlError)."""

    async def status(self) -> GatewayStatus: ...

    async def meters(self) -> list[MeterRow]: ...

    async def read_meter(self, meter_id: str) -> MeterReading: ...

    async def bus_names(self) -> list[str]: ...

    async def scan_bus(self, bus: str, seconds: int) -> list[ScanHit]: ...

    async def set_relay(self, meter_id: str, closed: bool) -> RelayState: ...

    async def credit(self, meter_id: str) -> CreditInfo: ...

    async def topup(self, meter_id: str, amount: Decimal, reference: str) -> CreditInfo: ...

    async def emergency(self, meter_id: str) -> CreditInfo: ...

    async def log_lines(self, after_seq: int | None, limit: int) -> list[LogLine]:
        """Lines with seq > after_seq (oldest first), or the last `limit` lines when None."""
        ...

    async def config_show(self) -> list[ConfigEntry]: ...

    async def config_check(self) -> list[ConfigProblem]: ...

    async def config_set(self, key: str, value: str) -> ConfigEntry:
        """Validate, then write the config file atomically (temp + fsync + rename)."""
        ...

    async def keys_show(self) -> list[KeyInfo]: ...

    async def uplink_flush(self) -> FlushResult: ...

    async def set_time(self, when: datetime) -> datetime: ...

    async def restart(self) -> str:
        """Stop the service cleanly and start it again (relays keep their state); returns a
        line for the technician before the stop begins."""
        ...

    async def export(self, directory: str, start: date, end: date) -> ExportResult:
        """Readings, events and ledger of [start, end] as CSV files in `directory`."""
        ...

    async def record_audit(self, user: str, command: str, args: list[str], outcome: str) -> None:
        """Store an audit event (kind="audit"); it goes up in the next uplink batch."""
        ...
