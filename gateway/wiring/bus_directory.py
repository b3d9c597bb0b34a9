"""The console's `BusDirectory` and `MeterKeys` (gateway/console/ports.py) over the buses the
service opened from the protocol plugins: counters typed by each plugin's CounterSpec, scan and
keys where the plugin has them. Names no protocol: everything comes from the plugin list.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.errors import MeterGatewayError
from drivers.errors import DriverError
from drivers.plugin import SILENT_HINT, ConsoleCommand, MeterBus, ProtocolPlugin, PushSource
from gateway.config.loader import BusConfig, GatewayConfig, MeterConfig
from gateway.console.api import ControlError, KeyInfo, ScanHit
from gateway.console.ports import BusInfo
from gateway.wiring import protocols

LOGGER = logging.getLogger(__name__)


class RunningBuses(Protocol):
    """What OpenedBuses reads of the running service (live: the buses open at `run`)."""

    @property
    def config(self) -> GatewayConfig: ...
    @property
    def buses(self) -> Mapping[str, MeterBus]: ...
    @property
    def push_sources(self) -> Sequence[PushSource]: ...


@dataclass(frozen=True)
class _Opened:
    bus: BusConfig
    plugin: ProtocolPlugin | None
    meters: list[MeterConfig]
    opened: Any  # the plugin's MeterBus or PushSource; None while not open


class OpenedBuses:
    """The console's `BusDirectory` and `MeterKeys` (gateway/console/ports.py) over the buses
    the service opened: counters typed by each plugin's CounterSpec, scan and keys where the
    plugin has them."""

    def __init__(self, service: RunningBuses) -> None:
        self._service = service

    def _entries(self) -> dict[str, _Opened]:
        config = self._service.config
        sources = {s.bus_id: s for s in self._service.push_sources}
        entries = {}
        for bus in config.buses:
            meters = [m for m in config.meters if m.bus == bus.id]
            found = protocols.plugin(meters[0].protocol) if meters else None
            opened = self._service.buses.get(bus.id) or sources.get(bus.id)
            entries[bus.id] = _Opened(bus, found, meters, opened)
        return entries

    def buses(self) -> list[BusInfo]:
        return [BusInfo(bus_id, entry.plugin.name if entry.plugin else "",
                        bool(entry.plugin and entry.plugin.scan and entry.opened is not None),
                        self._bus_counters(entry),
                        entry.plugin.silent_hint if entry.plugin else SILENT_HINT)
                for bus_id, entry in self._entries().items()]

    def _bus_counters(self, entry: _Opened) -> dict[str, int]:
        if entry.plugin is None or entry.opened is None:
            return {}
        if entry.plugin.kind == "pushed":
            return entry.plugin.counters.typed(_raw(entry, None))
        totals: dict[str, int] = {}
        for meter in entry.meters:
            for name, count in _raw(entry, meter.id).items():
                totals[name] = totals.get(name, 0) + count
        return entry.plugin.counters.typed(totals)

    def meter_counters(self, meter_id: str) -> Mapping[str, int]:
        entry = next((e for e in self._entries().values()
                      if any(m.id == meter_id for m in e.meters)), None)
        if entry is None or entry.plugin is None or entry.opened is None:
            return {}
        return entry.plugin.counters.typed(_raw(entry, meter_id))

    async def scan(self, bus_id: str, seconds: int) -> list[ScanHit]:
        entries = self._entries()
        entry = entries.get(bus_id)
        if entry is None:
            raise ControlError(f"no bus {bus_id!r}: one of {', '.join(entries)}")
        scan = entry.plugin.scan if entry.plugin is not None else None
        if scan is None or entry.opened is None:
            able = sorted(p.name for p in protocols.plugins() if p.scan is not None)
            raise ControlError(f"{bus_id}: scan works on {' and '.join(able)} buses only")
        known = {str(m.address).upper(): m for m in entry.meters}
        hits = []
        for found in await scan.run(entry.opened, entry.meters, seconds):
            meter = known.get(found.address.upper())
            hits.append(ScanHit(bus_id, found.address,
                                meter.profile if meter is not None and meter.profile
                                else found.description,
                                meter.id if meter is not None else None))
        return hits

    def console_command(self, bus_id: str, name: str) -> ConsoleCommand:
        entries = self._entries()
        entry = entries.get(bus_id)
        if entry is None:
            raise ControlError(f"no bus {bus_id!r}: one of {', '.join(entries)}")
        return _console_command(entry, name)

    async def command(self, bus_id: str, name: str, args: list[str]) -> list[str]:
        command = self.console_command(bus_id, name)
        entry = self._entries()[bus_id]
        if entry.opened is None:
            raise ControlError(f"{bus_id} is not open yet; check 'status' and 'log'")
        try:
            return await asyncio.wait_for(command.run(entry.opened, args), command.timeout_s)
        except ValueError as exc:
            raise ControlError(f"{name} {bus_id}: {exc}. Usage: {name} BUS {command.usage}"
                               ) from None
        except TimeoutError:
            raise ControlError(f"{name} {bus_id}: no answer within {command.timeout_s:g} s; "
                               f"{entry.plugin.silent_hint if entry.plugin else SILENT_HINT}"
                               ) from None
        except DriverError as exc:
            raise ControlError(f"{name} {bus_id}: {exc}") from None
        except MeterGatewayError as exc:
            raise ControlError(f"{name} {bus_id}: {exc}") from None
        except Exception:  # a plugin's bug must not leave the console waiting for an answer
            LOGGER.exception("protocol_command_failed", extra={"bus": bus_id, "command": name})
            raise ControlError(f"{name} {bus_id} failed unexpectedly (a bug): see 'log'"
                               ) from None

    def key_ids(self) -> list[KeyInfo]:
        """The meter keys the opened buses hold (live: a key set over the uplink shows)."""
        keys = []
        for entry in self._entries().values():
            if entry.plugin is None or entry.plugin.keys is None or entry.opened is None:
                continue
            for key_id, meter_id in entry.plugin.keys(entry.opened):
                keys.append(KeyInfo(key_id, f"{entry.plugin.name} meter "
                                            f"{meter_id or 'not configured'}", meter_id))
        return keys


def _console_command(entry: _Opened, name: str) -> ConsoleCommand:
    """The command `name` of the bus's plugin, or ControlError saying which buses have it."""
    own = {c.name: c for c in entry.plugin.console_commands} if entry.plugin else {}
    if name in own:
        return own[name]
    able = sorted(p.name for p in protocols.plugins()
                  if any(c.name == name for c in p.console_commands))
    where = f"{' and '.join(able)} buses" if able else "no bus of this gateway"
    raise ControlError(f"{entry.bus.id}: {name} works on {where} only")


def _raw(entry: _Opened, meter_id: str | None) -> Mapping[str, int]:
    """The plugin's own counter names and counts: one meter's, or (None) the bus's."""
    assert entry.plugin is not None
    if entry.plugin.kind == "polled":
        return entry.opened.counters(meter_id) if meter_id is not None else {}
    counters = entry.plugin.pushed_counters
    return counters(entry.opened, meter_id) if counters is not None else {}
