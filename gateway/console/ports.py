"""What the console's service side needs from the running gateway, declared by the console.

The composition root (gateway/wiring/console.py) builds these ports from the running service and
hands them over as one `ConsolePorts`; the console never sees `Service`. `BusDirectory` is
implemented over the protocol plugins (gateway/wiring/protocols.py): counters come typed from
each plugin, and scanning is a capability a plugin may have. A port that is None is a component
this gateway does not have (no [prepay], no [uplink]): its operations say "not available".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from core.clock import Clock
from drivers.plugin import ConsoleCommand
from gateway.config.loader import GatewayConfig
from gateway.console.api import KeyInfo, LogLine, ScanHit
from storage.ledger import Account
from storage.records import ReadingSet
from storage.store import Store

# The counter names every protocol plugin reports; a plugin adds its own beside them.
STANDARD_COUNTERS = ("ok", "timeouts", "checksum", "other")


@dataclass(frozen=True, slots=True)
class BusInfo:
    bus_id: str
    protocol: str  # the plugin's name, as in the config
    can_scan: bool
    counters: Mapping[str, int] = field(default_factory=dict)  # STANDARD_COUNTERS + own, totals
    hint: str = ""  # what to check when its meters give nothing (the plugin's words)


class BusDirectory(Protocol):
    """The configured buses: their protocol, counters and optional scan."""

    def buses(self) -> list[BusInfo]:
        """Every configured bus with its counters summed over its meters, in config order."""
        ...

    def meter_counters(self, meter_id: str) -> Mapping[str, int]:
        """One meter's counters (STANDARD_COUNTERS and the plugin's own); {} if none yet."""
        ...

    async def scan(self, bus_id: str, seconds: int) -> list[ScanHit]:
        """Look for devices on the bus (a capability: raises ControlError naming the bus when
        its protocol cannot scan, or the bus does not exist)."""
        ...

    def console_command(self, bus_id: str, name: str) -> ConsoleCommand:
        """The command `name` of the bus's own protocol (its role, whether it changes the
        device); ControlError naming the bus when there is no such bus or command."""
        ...

    async def command(self, bus_id: str, name: str, args: list[str]) -> list[str]:
        """Run the bus's protocol's console command `name` (drivers/plugin.py ConsoleCommand)
        within its timeout; ControlError naming the bus when there is no such bus or command,
        the bus is not open, the words do not fit or the device fails."""
        ...


class MeterKeys(Protocol):
    def key_ids(self) -> list[KeyInfo]:
        """The meter keys the buses hold: key id, purpose, meter (never key material)."""
        ...


class MeterReader(Protocol):
    """Reading meters on demand, and what the service knows of their last reads."""

    def polled(self, meter_id: str) -> bool:
        """True when the meter can be read on demand (a polled bus that is open)."""
        ...

    async def read_now(self, meter_id: str) -> ReadingSet:
        """Read at once and store it like a scheduled read; DriverError when it fails."""
        ...

    def last_stored(self, meter_id: str) -> ReadingSet | None:
        """The newest stored reading (a pushing meter's only answer to `read`)."""
        ...

    def last_ok_ms(self, meter_id: str) -> int | None: ...

    def last_error(self, meter_id: str) -> str | None: ...


class PrepayFacade(Protocol):
    """The prepayment of this gateway: settings, accounts, relays and its operations."""

    @property
    def currency(self) -> str: ...

    @property
    def emergency_credit(self) -> int:
        """Emergency credit a meter may be granted, in money units (1/MONEY_SCALE)."""
        ...

    def prepaid(self, meter_id: str) -> bool: ...

    def account(self, meter_id: str) -> Account:
        """The meter's ledger totals (StorageError when the store refuses)."""
        ...

    def relay_closed(self, meter_id: str) -> bool | None:
        """The meter's relay: True closed (supply on), None when the board cannot tell."""
        ...

    def voucher_key_ids(self) -> list[str]: ...

    async def run(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """One prepay operation as the uplink runs it ("relay.set", "credit.topup",
        "emergency.activate"); raises Refused, PrepayError or StorageError."""
        ...


class UplinkStatus(Protocol):
    def connected(self) -> bool: ...

    def last_error(self) -> str | None: ...

    async def flush(self, timeout_s: float) -> None:
        """Send the backlog now; returns after at most timeout_s (sending goes on after)."""
        ...


class LogLines(Protocol):
    """The service's recent log records (gateway.console.logring.LogRing)."""

    def lines(self, after_seq: int | None, limit: int) -> list[LogLine]: ...


class EventSink(Protocol):
    def __call__(self, kind: str, meter_id: str | None, data: dict[str, Any],
                 severity: str = "info") -> None:
        """Store an event with its outbox row (it goes up in the next batch) and log it."""
        ...


class Restart(Protocol):
    def available(self) -> bool:
        """False when the service does not run its main loop (nothing to restart)."""
        ...

    def request(self, delay_s: float) -> None:
        """Stop cleanly after delay_s and run again in the same process."""
        ...


class SystemTime(Protocol):
    """The board's clock capability (`board.interface.Board` has it)."""

    def set_clock(self, when: datetime) -> None:
        """Set the system clock; `board.interface.ClockNotSettable` says why not."""
        ...


@dataclass(frozen=True, slots=True)
class ConsolePorts:
    """Everything the console's service side uses, handed over by the composition root."""

    config: GatewayConfig  # as loaded at start (config set applies after restart)
    clock: Clock
    started_ms: int  # wall time the service started (uptime)
    store: Callable[[], Store | None]  # None once the service has closed its store
    meters: MeterReader
    buses: BusDirectory
    meter_keys: MeterKeys
    events: EventSink
    restart: Restart
    system_time: SystemTime
    gateway_key: Path  # the gateway's Ed25519 key file (may not exist yet)
    prepay: PrepayFacade | None = None
    uplink: UplinkStatus | None = None
    log: LogLines | None = None
