"""Wires the uplink into the service: keys, the command registry (read, the protocol plugins'
server commands, prepay ops) and wake-ups."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.errors import MeterGatewayError, Refused
from drivers.errors import DriverError
from gateway.wiring.host import ServiceView
from uplink.commands import CommandContext, CommandRefused, CommandRegistry
from uplink.errors import UplinkError
from uplink.keys import load_private_key, load_public_key
from uplink.service import Uplink
from uplink.settings import UplinkSettings


class UplinkSetupError(MeterGatewayError):
    """The uplink cannot start (a key missing or unreadable): the service stops at start-up."""


def resolved(settings: UplinkSettings, base: Path) -> UplinkSettings:
    """Relative key and certificate paths are relative to the config file's directory."""
    changes = {}
    for name in ("key_file", "server_public_key", "tls_ca", "tls_cert", "tls_key"):
        value = getattr(settings, name)
        if value is not None and not Path(value).is_absolute():
            changes[name] = base / value
    return dataclasses.replace(settings, **changes)


def build_uplink(service: ServiceView) -> Uplink:
    config = service.config
    assert config.uplink is not None and service.store is not None
    settings = resolved(config.uplink, config.source.parent)
    try:
        signing = load_private_key(Path(settings.key_file))
    except (UplinkError, OSError) as exc:
        raise UplinkSetupError(f"gateway key {settings.key_file}: {exc} "
                               "(create it with `gateway keys init`)") from exc
    try:
        server = load_public_key(Path(settings.server_public_key))
    except (UplinkError, OSError) as exc:
        raise UplinkSetupError(f"server public key {settings.server_public_key}: {exc}") from exc
    registry = CommandRegistry()
    registry.register("read", read_command(service))
    for op, handler in plugin_commands(service).items():
        registry.register(op, handler)
    if service.prepay is not None:
        for op, handler in service.prepay.handlers().items():
            registry.register(op, handler)
    return Uplink(service.store, settings, signing, server, registry, clock=service.wall)


def read_command(service: ServiceView) -> Any:
    async def read(args: dict[str, Any], ctx: CommandContext) -> dict[str, Any]:
        meter_id = args.get("meter")
        if not isinstance(meter_id, str) or meter_id not in {m.id for m in service.config.meters}:
            raise CommandRefused("unknown_meter", f"{meter_id!r} is not a configured meter")
        try:
            reading = await service.read_now(meter_id)
        except DriverError as exc:
            raise CommandRefused("meter_not_answering", f"meter {meter_id}: {exc}") from None
        return {"meter": meter_id, "t": reading.ts_ms // 1000,
                "values": {v.quantity: _exact(v.value) for v in reading.values}}
    return read


def plugin_commands(service: ServiceView) -> dict[str, Any]:
    """Each protocol plugin's server commands, over the sources the service opened for it; a
    plugin's `Refused` becomes the uplink's CommandRefused (its reason goes upstream)."""
    from gateway.wiring.protocols import plugins

    commands = {}
    for plugin in plugins():
        def opened(name: str = plugin.name) -> list[Any]:
            ids = {b.id for b in service.config.buses if b.protocol == name}
            return [s for s in service.push_sources if s.bus_id in ids] + \
                [bus for bus_id, bus in service.buses.items() if bus_id in ids]
        for op, factory in plugin.server_commands.items():
            commands[op] = _refusals_mapped(factory(opened))
    return commands


def _refusals_mapped(handler: Any) -> Any:
    async def command(args: dict[str, Any], ctx: CommandContext) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await handler(args, ctx)
        except CommandRefused:
            raise
        except Refused as exc:
            raise CommandRefused(exc.reason, exc.detail) from None
        return result
    return command


def _exact(value: Decimal | str) -> str:
    return str(value)
