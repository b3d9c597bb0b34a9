"""What the console needs from the running service: `ControlApi` and the plain data it returns.

The service implements `ControlApi`; the console only ever talks to this protocol, locally (the
serial console inside the service) or through the control socket (`gateway.console.socket`). Every
operation raises `ControlError` with a message that tells the technician what to do next; an
operation whose component is not wired on this gateway raises
`ControlError("... not available on this gateway")`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from core.errors import MeterGatewayError
from drivers.plugin import CONSOLE_COMMAND_MAX_S
from gateway.console.operations import Operation, Role, declared, operation

__all__ = ["Role"]  # declared with the operations; imported from here by most of the console


class ControlError(MeterGatewayError):
    """An operation failed; the message says what failed and what to do next."""


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
    """A device found on a bus, by its address as the bus's protocol writes it."""

    bus: str
    address: str  # as a `[[meter]]` address is written: "17", "MAN-12345678-v1-t7"
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
    purpose: str  # e.g. "uplink signing", "<protocol> meter shop-12"
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


@dataclass(frozen=True, slots=True)
class IntervalLine:
    """One interval of one register (docs/analytics.md)."""

    start: datetime
    quantity: str
    value: Decimal | None  # None: missing
    quality: str  # measured | interpolated | missing
    gap_s: int
    flags: list[str]


@dataclass(frozen=True, slots=True)
class BalanceLine:
    """A node's balance over one interval, or over the day (`period` "day")."""

    node: str
    period: str  # interval | day
    start: datetime
    status: str  # complete | incomplete
    parent: Decimal | None
    children: Decimal | None
    loss: Decimal | None
    loss_percent: Decimal | None
    missing: list[str]


@dataclass(frozen=True, slots=True)
class AlarmLine:
    """An alarm: active now, or a recent raise or clear."""

    alarm: str
    subject: str
    severity: str
    at: datetime
    active: bool
    detail: str


SCAN_MARGIN_S = 30.0  # a scan takes its own duration plus bus set-up time
# the service stops a protocol's command at its own timeout; the answer then still has to come
PROTOCOL_COMMAND_TIMEOUT_S = CONSOLE_COMMAND_MAX_S + 10.0
EXPORT_TIMEOUT_S = 600.0  # a year of readings to a slow USB stick


class ControlApi(Protocol):
    """Operations of the running service offered to the console (all raise ControlError).

    Each is declared once, here: its role, the client's timeout and a help line; the control
    socket, `RemoteApi` and the shell's commands derive theirs from `OPERATIONS`.
    """

    @operation(Role.VIEWER, "gateway id, uptime, clock, storage, uplink, bus errors")
    async def status(self) -> GatewayStatus: ...

    @operation(Role.VIEWER, "table of meters: protocol, last reading, error, credit")
    async def meters(self) -> list[MeterRow]: ...

    @operation(Role.VIEWER, "read a meter now and show every quantity")
    async def read_meter(self, meter_id: str) -> MeterReading: ...

    @operation(Role.VIEWER, "the configured bus ids")
    async def bus_names(self) -> list[str]: ...

    @operation(Role.TECHNICIAN, "find devices on a bus", plus_seconds_of="seconds",
               timeout_s=SCAN_MARGIN_S)
    async def scan_bus(self, bus: str, seconds: int) -> list[ScanHit]: ...

    # the role each command needs is the plugin's (drivers/plugin.py ConsoleCommand): the
    # service checks it against the caller's role, which the socket fills in
    @operation(Role.VIEWER, "run a protocol's own command on one of its buses",
               timeout_s=PROTOCOL_COMMAND_TIMEOUT_S, caller_role="role", caller="user")
    async def protocol_command(self, command: str, bus: str, args: list[str],
                               role: str, user: str) -> list[str]:
        """The lines the command printed. Over the socket `role` and `user` are the logged-in
        ones; a command that changes the device is audited here, under `user`."""
        ...

    @operation(Role.TECHNICIAN, "switch a supply relay (asks to confirm)")
    async def set_relay(self, meter_id: str, closed: bool) -> RelayState: ...

    @operation(Role.VIEWER, "show prepaid credit, emergency and relay state")
    async def credit(self, meter_id: str) -> CreditInfo: ...

    @operation(Role.TECHNICIAN, "add credit (asks to confirm)")
    async def topup(self, meter_id: str, amount: Decimal, reference: str) -> CreditInfo: ...

    @operation(Role.TECHNICIAN, "grant emergency credit (asks to confirm)")
    async def emergency(self, meter_id: str) -> CreditInfo: ...

    @operation(Role.VIEWER, "recent service log lines; -f follows")
    async def log_lines(self, after_seq: int | None, limit: int) -> list[LogLine]:
        """Lines with seq > after_seq (oldest first), or the last `limit` lines when None."""
        ...

    @operation(Role.TECHNICIAN, "switch a protocol's raw wire bytes in the log on or off")
    async def log_trace(self, protocol: str, on: bool) -> list[str]:
        """The protocols whose wire bytes are now logged at TRACE (until the next restart;
        `[log] trace` in the config makes it last)."""
        ...

    @operation(Role.VIEWER, "the config as dotted keys, secrets hidden")
    async def config_show(self) -> list[ConfigEntry]: ...

    @operation(Role.VIEWER, "the problems of the config file")
    async def config_check(self) -> list[ConfigProblem]: ...

    @operation(Role.ADMIN, "change one config key (applied after restart)")
    async def config_set(self, key: str, value: str) -> ConfigEntry:
        """Validate, then write the config file atomically (temp + fsync + rename)."""
        ...

    @operation(Role.TECHNICIAN, "list key ids (never the keys themselves)")
    async def keys_show(self) -> list[KeyInfo]: ...

    @operation(Role.TECHNICIAN, "send the backlog now")
    async def uplink_flush(self) -> FlushResult: ...

    @operation(Role.TECHNICIAN, "set the clock (UTC with Z)")
    async def set_time(self, when: datetime) -> datetime: ...

    @operation(Role.TECHNICIAN, "restart the service (asks to confirm)")
    async def restart(self) -> str:
        """Stop the service cleanly and start it again (relays keep their state); returns a
        line for the technician before the stop begins."""
        ...

    @operation(Role.TECHNICIAN, "write readings, events and ledger as CSV",
               timeout_s=EXPORT_TIMEOUT_S)
    async def export(self, directory: str, start: date, end: date) -> ExportResult:
        """Readings, events and ledger of [start, end] as CSV files in `directory`."""
        ...

    @operation(Role.VIEWER, "a meter's interval energy on one local day, quality and flags")
    async def intervals(self, meter_id: str, day: date | None) -> list[IntervalLine]: ...

    @operation(Role.VIEWER, "energy balance per node: a day's total and its last intervals")
    async def balance(self, day: date | None) -> list[BalanceLine]: ...

    @operation(Role.VIEWER, "active alarms, then the recent raises and clears")
    async def alarms(self) -> list[AlarmLine]: ...

    # a viewer's changes are refused before they run, but the refusal is audited too
    @operation(Role.VIEWER, "store an audit event", caller="user")
    async def record_audit(self, user: str, command: str, args: list[str], outcome: str) -> None:
        """Store an audit event (kind="audit"); it goes up in the next uplink batch. Over the
        socket `user` is the logged-in name, whatever the client sends."""
        ...


OPERATIONS: dict[str, Operation] = declared(ControlApi)
