"""Service-side operations on the gateway itself: log, keys, uplink, clock, restart, export,
audit."""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, date, datetime
from pathlib import Path

from board.interface import ClockNotSettable
from core.logs import set_trace, trace_enabled
from gateway.console.api import (
    ControlError,
    ExportResult,
    FlushResult,
    KeyInfo,
    LogLine,
)
from gateway.console.export import export_in_own_store
from gateway.console.ops_common import OpsBase, utc
from storage.errors import StorageError

LOGGER = logging.getLogger(__name__)

UPLINK_FLUSH_TIMEOUT_S = 30.0  # the console waits this long; the uplink keeps sending after
RESTART_DELAY_S = 0.5  # the restart answer goes out to the console before the service stops


class SystemOps(OpsBase):
    async def log_lines(self, after_seq: int | None, limit: int) -> list[LogLine]:
        if self.ports.log is None:
            raise ControlError("the service log is not available on this gateway")
        return self.ports.log.lines(after_seq, limit)

    async def log_trace(self, protocol: str, on: bool) -> list[str]:
        known = sorted({bus.protocol for bus in self.ports.buses.buses()})
        if protocol not in known:
            raise ControlError(f"no bus of protocol {protocol!r} here (configured: "
                               f"{', '.join(known) or 'none'})")
        set_trace(protocol, on)
        LOGGER.info("wire_trace_switched", extra={"protocol": protocol, "on": on})
        return [name for name in known if trace_enabled(name)]

    async def keys_show(self) -> list[KeyInfo]:
        keys = []
        if self.ports.gateway_key.exists():
            keys.append(KeyInfo("gateway-ed25519", "uplink signing and voucher receipts", None))
        keys += self.ports.meter_keys.key_ids()
        if self.ports.prepay is not None:
            keys += [KeyInfo(kid, "voucher verification (utility)", None)
                     for kid in self.ports.prepay.voucher_key_ids()]
        return keys

    async def uplink_flush(self) -> FlushResult:
        uplink = self.ports.uplink
        if uplink is None:
            raise ControlError("the uplink is not available on this gateway (no [uplink])")
        before = self._store().outbox_backlog()
        await uplink.flush(UPLINK_FLUSH_TIMEOUT_S)
        after = self._store().outbox_backlog()
        return FlushResult(max(0, before - after), after)

    async def set_time(self, when: datetime) -> datetime:
        if when.tzinfo is None:
            raise ControlError(f"{when.isoformat()}: give the zone, e.g. 2026-11-23T17:08:00Z")
        data = {"requested": when.astimezone(UTC).isoformat(),
                "was": utc(self.ports.clock.wall_ms()).isoformat()}
        events = self.ports.events
        try:
            self.ports.system_time.set_clock(when)
        except ClockNotSettable as exc:
            # a simulated board never sets the host's clock: recorded, but nothing is wrong
            events("clock_set_refused", None, {**data, "why": exc.why},
                   "info" if exc.expected else "warning")
            raise ControlError(f"{exc}; the request was recorded") from None
        events("clock_set", None, data, "warning")
        return utc(self.ports.clock.wall_ms())

    async def restart(self) -> str:
        if not self.ports.restart.available():
            raise ControlError("the service is not running its main loop; nothing to restart")
        self.ports.events("restart_requested", None, {}, "warning")
        # later, so that this answer reaches the console before the connection closes
        self.ports.restart.request(RESTART_DELAY_S)
        LOGGER.warning("restart_requested", extra={"in_s": RESTART_DELAY_S})
        return "Restarting the service; relays keep their state. Log in again in a few seconds."

    async def export(self, directory: str, start: date, end: date) -> ExportResult:
        if end < start:
            raise ControlError(f"--until {end} is before --from {start}")
        target = Path(directory)
        if not target.is_dir() or not os.access(target, os.W_OK):
            raise ControlError(f"{directory}: not a writable directory; is the stick mounted?")
        try:
            return await asyncio.to_thread(export_in_own_store, self._store().path,
                                           self.ports.config, target, start, end)
        except OSError as exc:
            raise ControlError(f"{directory}: writing failed ({exc}); is the stick full?") from None
        except StorageError as exc:
            raise ControlError(f"reading the database failed ({exc}); check 'log'") from None

    async def record_audit(self, user: str, command: str, args: list[str], outcome: str) -> None:
        # "arguments", not "args": the event data is also logged, and LogRecord owns "args"
        self.ports.events("audit", None, {"user": user, "command": command,
                                          "arguments": list(args), "outcome": outcome})
