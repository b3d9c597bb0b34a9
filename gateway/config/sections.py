"""The config sections owned by other packages ([uplink], [prepay], [console]), and the file paths.

Each package validates its own table; its errors are turned into config problems naming the key.
Every key that names a file is resolved here, once, against the config file's directory, so the
start-up checks (gateway/config/preflight.py) look at exactly the file the service will open.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from core.schema import Problems, time_zone

UPLINK_PATH_KEYS = ("key_file", "server_public_key", "tls_ca", "tls_cert", "tls_key")


def resolve(value: str | Path, base: Path) -> Path:
    """A config path: relative ones are relative to the config file's directory, not the cwd."""
    path = Path(value)
    return path if path.is_absolute() else base / path


def uplink_section(section: Any, gateway_id: Any, problems: Problems) -> Any:
    """The [uplink] table, validated by the uplink package (its keys are its own)."""
    if section is None:
        return None
    from uplink.errors import UplinkError
    from uplink.settings import settings_from_section

    try:
        return settings_from_section(section, str(gateway_id or ""))
    except UplinkError as exc:
        for part in str(exc).split("; "):
            if part.startswith("[uplink] "):
                key, _, why = part.removeprefix("[uplink] ").partition(": ")
                problems.add(f"uplink.{key}", why or part)
            else:  # a message naming no key: better the section than a made-up key
                problems.add("uplink", part)
    return None


def prepay_section(section: Any, meter_ids: Mapping[str, str] | set[str],
                   problems: Problems) -> Any:
    """The [prepay] table, validated by the prepay package; its meters must be configured, and
    one whose supply is its own breaker (`breaker = "meter"`) of a protocol that drives one
    (`meter_ids`: meter id -> protocol)."""
    if section is None:
        return None
    from prepay.errors import PrepayError
    from prepay.settings import settings_from_config

    zone = section.get("timezone") if isinstance(section, dict) else None
    if isinstance(zone, str) and (why := time_zone(zone)) is not None:
        # the one time zone check of the file, also for a name the prepay parser chokes on
        # ('Europe', a directory of the tz database)
        problems.add("prepay.timezone", why)
        return None
    try:
        settings = settings_from_config(section)
    except PrepayError as exc:
        key, _, why = str(exc).partition(": ")
        problems.add(key, why or str(exc))
        return None
    for meter_id in settings.meters:
        if meter_id not in meter_ids:
            problems.add(f"prepay.meters.{meter_id}", "is not a configured [[meter]] id")
    if isinstance(meter_ids, Mapping):
        _check_breakers(settings, meter_ids, problems)
    return settings


def _check_breakers(settings: Any, protocols: Mapping[str, str], problems: Problems) -> None:
    from gateway.wiring.protocols import plugin

    for meter_id, meter in settings.meters.items():
        protocol = protocols.get(meter_id)
        if meter.breaker != "meter" or protocol is None:
            continue
        found = plugin(protocol)
        if found is None or found.breakers is None:
            problems.add(f"prepay.meters.{meter_id}.breaker",
                         f"protocol {protocol!r} has no breaker of its own the gateway drives")


def console_section(section: Any, problems: Problems) -> Any:
    """The [console] table, validated by the console package (accounts, socket, lockout)."""
    if section is None:
        return None
    from gateway.console.accounts import AccountError, parse_console_section

    try:
        return parse_console_section(section, where="console")
    except AccountError as exc:
        for part in str(exc).removeprefix("console: ").split("; "):
            key, _, why = part.partition(": ")
            problems.add(key, why or part)
    return None


def resolved_uplink(settings: Any, base: Path) -> Any:
    """UplinkSettings with its key and certificate paths resolved."""
    if settings is None:
        return None
    changes = {name: resolve(getattr(settings, name), base) for name in UPLINK_PATH_KEYS
               if getattr(settings, name) is not None}
    return dataclasses.replace(settings, **changes)


def resolved_prepay(settings: Any, base: Path) -> Any:
    """PrepaySettings with the voucher public key paths resolved."""
    if settings is None:
        return None
    keys = {kid: str(resolve(path, base)) for kid, path in settings.voucher_keys.items()}
    return dataclasses.replace(settings, voucher_keys=keys)


def resolved_board(board: dict[str, Any], db_path: Path, base: Path) -> dict[str, Any]:
    """The [board] table with `state_dir` resolved (default: `board` beside the database)."""
    state_dir = resolve(board["state_dir"], base) if board.get("state_dir") else \
        db_path.parent / "board"
    return {**board, "state_dir": str(state_dir)}


def resolved_bus_paths(buses: Iterable[Any], plugin_named: Callable[[str], Any], db_path: Path,
                       base: Path) -> list[Any]:
    """Buses with the files their plugin's keys name resolved (defaults beside the database)."""
    out = []
    for bus in buses:
        plugin = plugin_named(bus.protocol) if bus.protocol else None
        if plugin is not None and plugin.resolve_paths is not None:
            options = plugin.resolve_paths(dict(bus.options), lambda v: resolve(v, base),
                                           db_path.parent)
            bus = dataclasses.replace(bus, options=options)
        out.append(bus)
    return out
