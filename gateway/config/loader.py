"""The gateway's one TOML config file: loaded with tomllib, validated whole before anything starts.

Every problem (unknown key, missing field, wrong type, duplicate meter id, two buses on one
port, a meter on an undeclared bus, and what each protocol plugin checks) is reported at once,
each naming the file and the key; the CLI then exits with status 2. The protocol keys of a bus
and a meter are declared by the protocol plugins (gateway/wiring/protocols.py lists them).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import MeterGatewayError
from core.logs import trace_list_problem
from core.schema import (
    Field,
    Problems,
    identifier,
    in_range,
    non_empty,
    non_negative,
    one_of,
    opt,
    positive,
    req,
    time_zone,
    validate_table,
)
from gateway.config.sections import (
    console_section,
    prepay_section,
    resolve,
    resolved_board,
    resolved_bus_paths,
    resolved_prepay,
    resolved_uplink,
    uplink_section,
)

if TYPE_CHECKING:
    from drivers.plugin import ProtocolPlugin

COMMODITIES = ("electricity", "water", "heat")


class ConfigError(MeterGatewayError):
    """The config file is unusable; `problems` holds one line per problem.

    `partial` is what could be built despite the problems (None when not even the database path
    is known): the start-up checks still look at its files, so every problem shows at once.
    """

    def __init__(self, problems: list[str], partial: GatewayConfig | None = None) -> None:
        self.problems = problems
        self.partial = partial
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class BusConfig:
    id: str
    kind: str  # "serial" | "tcp"
    port: str = ""
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1
    rs485: dict[str, Any] = field(default_factory=dict)
    inter_request_gap_ms: int = 0  # 0: the 3.5-character time of the baud rate
    host: str = ""
    tcp_port: int = 502
    protocol: str = ""  # the plugin it belongs to ("" for a bus nothing uses)
    options: dict[str, Any] = field(default_factory=dict)  # the protocol plugin's own keys

    @property
    def endpoint(self) -> str:
        return self.port if self.kind == "serial" else f"{self.host}:{self.tcp_port}"


@dataclass(frozen=True)
class MeterConfig:
    id: str
    bus: str
    protocol: str
    address: int | str
    poll_interval_s: int = 60
    profile: str = ""  # the device's register map or model, where its protocol has one
    commodity: str = "electricity"
    timeout_ms: int = 1000
    options: dict[str, Any] = field(default_factory=dict)  # the protocol plugin's own keys


@dataclass(frozen=True)
class StorageConfig:
    path: Path
    max_mb: int = 1024
    commit_interval_ms: int = 1000


@dataclass(frozen=True)
class GatewayConfig:
    source: Path
    gateway_id: str
    timezone: str
    storage: StorageConfig
    log_level: str
    board: dict[str, Any]
    buses: tuple[BusConfig, ...]
    meters: tuple[MeterConfig, ...]
    sections: dict[str, Any] = field(default_factory=dict)  # uplink, prepay, console: raw tables
    uplink: Any = None  # uplink.settings.UplinkSettings when [uplink] is present
    prepay: Any = None  # prepay.settings.PrepaySettings when [prepay] is present
    console: Any = None  # gateway.console.accounts.ConsoleSettings when [console] is present
    log_trace: tuple[str, ...] = ()  # protocols whose wire bytes are logged at TRACE

    def bus(self, bus_id: str) -> BusConfig:
        return next(b for b in self.buses if b.id == bus_id)

    def meter(self, meter_id: str) -> MeterConfig:
        return next(m for m in self.meters if m.id == meter_id)


TOP_FIELDS: dict[str, Field] = {
    "gateway_id": req(str, identifier),
    "timezone": opt(str, "UTC", time_zone),
    "storage": req(dict),
    "log": opt(dict, {}),
    "board": opt(dict, {}),
    "bus": opt(list, []),
    "meter": opt(list, []),
    "uplink": opt(dict, None),
    "prepay": opt(dict, None),
    "console": opt(dict, None),
}

STORAGE_FIELDS = {
    "path": req(str, non_empty),
    "max_mb": opt(int, 1024, positive),
    "commit_interval_ms": opt(int, 1000, in_range(50, 60_000)),
}

LOG_FIELDS = {
    "level": opt(str, "info", one_of("debug", "info", "warning", "error")),
    # raw wire bytes at TRACE for these protocols (the console switches them at run time)
    "trace": opt(list, [], lambda names: trace_list_problem(names, _protocol_names())),
}

BOARD_FIELDS = {
    "kind": opt(str, "simulated", one_of("simulated", "rpi")),
    "state_dir": opt(str, ""),
    "profile": opt(str, ""),
    "bindings": opt(dict, {}),
    "hardware_watchdog": opt(str, ""),
    "modem_stuck_after_s": opt(int, 600, positive),
}

RS485_FIELDS = {
    "enabled": opt(bool, True),
    "rts_level_for_tx": opt(bool, True),
    "rts_level_for_rx": opt(bool, False),
    "delay_before_tx_ms": opt(int, 0, non_negative),
    "delay_before_rx_ms": opt(int, 0, non_negative),
    "mode": opt(str, "kernel", one_of("kernel", "rts")),
}

BUS_FIELDS = {
    "id": req(str, identifier),
    "kind": opt(str, "serial", one_of("serial", "tcp")),
    "port": opt(str, ""),
    "baudrate": opt(int, 9600, one_of(300, 600, 1200, 2400, 4800, 9600, 19200, 38400,
                                      57600, 115200)),
    "bytesize": opt(int, 8, one_of(7, 8)),
    "parity": opt(str, "N", one_of("N", "E", "O")),
    "stopbits": opt(int, 1, one_of(1, 2)),
    "rs485": opt(dict, {}),
    "inter_request_gap_ms": opt(int, 0, in_range(0, 10_000)),
    "host": opt(str, ""),
    "tcp_port": opt(int, 502, in_range(1, 65535)),
}

METER_COMMON = {
    "id": req(str, identifier),
    "bus": req(str),
    "protocol": req(str),  # one of the plugins' names (checked in _meter_common)
    "commodity": opt(str, "electricity", one_of(*COMMODITIES)),
    "poll_interval_s": opt(int, 60, in_range(1, 86_400)),
    # up to 5 min: a 3 kB optical readout at 300 baud takes about 100 s
    "timeout_ms": opt(int, 1000, in_range(10, 300_000)),
}

def _plugins() -> tuple[ProtocolPlugin, ...]:
    from gateway.wiring.protocols import plugins

    return plugins()


def bus_fields() -> dict[str, Field]:
    """Every key a [[bus]] may have: the generic ones and each plugin's own."""
    fields = dict(BUS_FIELDS)
    for plugin in _plugins():
        fields.update(plugin.bus_fields)
    return fields


def meter_fields_by_protocol() -> dict[str, dict[str, Field]]:
    """Each plugin's [[meter]] keys beside METER_COMMON, by protocol name."""
    return {plugin.name: dict(plugin.meter_fields) for plugin in _plugins()}


def _protocol_names() -> list[str]:
    return [plugin.name for plugin in _plugins()]


def _meter_common() -> dict[str, Field]:
    names = [plugin.name for plugin in _plugins()]
    return {**METER_COMMON, "protocol": req(str, one_of(*names))}


def load_config(path: str | Path) -> GatewayConfig:
    """Read and validate the file; raises ConfigError listing every problem found."""
    source = Path(path)
    problems = Problems(str(source))
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{source}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{source}: cannot read: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: not valid TOML: {exc}"]) from None
    config = _build(raw, source, problems)
    if problems or config is None:
        raise ConfigError(problems.lines, config)
    return config


def _build(raw: dict[str, Any], source: Path, problems: Problems) -> GatewayConfig | None:
    top = validate_table(raw, TOP_FIELDS, "", problems)
    storage = validate_table(top["storage"] or {}, STORAGE_FIELDS, "storage", problems)
    log = validate_table(top["log"], LOG_FIELDS, "log", problems)
    board = validate_table(top["board"], BOARD_FIELDS, "board", problems)
    bus_entries = _buses(top["bus"], problems)
    placed = _meters(top["meter"], {e.bus.id: e.bus for e in bus_entries}, problems)
    buses = _settle_buses(bus_entries, placed, problems)
    meters = [meter for _where, meter in placed]
    sections = {k: top[k] for k in ("uplink", "prepay", "console") if top[k] is not None}
    uplink = uplink_section(sections.get("uplink"), top["gateway_id"], problems)
    prepay = prepay_section(sections.get("prepay"), {m.id for m in meters}, problems)
    console = console_section(sections.get("console"), problems)
    if not isinstance(storage.get("path"), str):
        return None  # every default path hangs off the database directory
    base = source.parent
    db_path = resolve(storage["path"], base)
    return GatewayConfig(
        source=source,
        gateway_id=top["gateway_id"],
        timezone=top["timezone"],
        storage=StorageConfig(db_path, storage["max_mb"], storage["commit_interval_ms"]),
        log_level=log["level"],
        log_trace=tuple(log["trace"]),
        board=resolved_board(board, db_path, base),
        buses=tuple(resolved_bus_paths(buses, _plugin_named, db_path, base)),
        meters=tuple(meters),
        sections=sections,
        uplink=resolved_uplink(uplink, base),
        prepay=resolved_prepay(prepay, base),
        console=console,
    )


def _plugin_named(name: str) -> ProtocolPlugin | None:
    return next((p for p in _plugins() if p.name == name), None)


def _table_list(value: Any, name: str, problems: Problems) -> list[tuple[str, Any]]:
    if not isinstance(value, list):
        problems.add(name, f"must be an array of tables ([[{name}]])")
        return []
    return [(f"{name}[{i}]", item) for i, item in enumerate(value)]


@dataclass(frozen=True)
class _BusEntry:
    where: str  # "bus[0]"
    bus: BusConfig
    plugin_keys: frozenset[str]  # the plugin keys the table sets (says whose bus it is)


def _buses(raw: Any, problems: Problems) -> list[_BusEntry]:
    entries: list[_BusEntry] = []
    ids: set[str] = set()
    endpoints: dict[str, str] = {}
    fields = bus_fields()
    for where, table in _table_list(raw, "bus", problems):
        values = validate_table(table, fields, where, problems)
        if not values:
            continue
        values["rs485"] = validate_table(values["rs485"], RS485_FIELDS, f"{where}.rs485",
                                         problems) if values["rs485"] else {}
        if values["kind"] == "serial" and not values["port"]:
            problems.add(f"{where}.port", "missing (required for a serial bus)")
        if values["kind"] == "tcp" and not values["host"]:
            problems.add(f"{where}.host", "missing (required for a tcp bus)")
        options = {k: values.pop(k) for k in list(values) if k not in BUS_FIELDS}
        bus = BusConfig(**values, options=options)
        if bus.id in ids:
            problems.add(f"{where}.id", f"duplicate bus id {bus.id!r}")
        ids.add(bus.id)
        if bus.endpoint and bus.endpoint in endpoints:
            problems.add(f"{where}.port" if bus.kind == "serial" else f"{where}.host",
                         f"{bus.endpoint!r} is already used by bus {endpoints[bus.endpoint]!r}")
        endpoints.setdefault(bus.endpoint, bus.id)
        entries.append(_BusEntry(where, bus, frozenset(set(table) & set(options))))
    return entries


def _meters(raw: Any, buses: dict[str, BusConfig],
            problems: Problems) -> list[tuple[str, MeterConfig]]:
    """Every meter with its key path; the checks that span meters (ids, addresses, buses)."""
    placed: list[tuple[str, MeterConfig]] = []
    seen: set[str] = set()
    addresses: dict[tuple[str, str], str] = {}
    bus_protocols: dict[str, tuple[str, str]] = {}
    common = _meter_common()
    for where, table in _table_list(raw, "meter", problems):
        protocol = table.get("protocol") if isinstance(table, dict) else None
        plugin = _plugin_named(protocol) if isinstance(protocol, str) else None
        specific = dict(plugin.meter_fields) if plugin is not None else {}
        values = validate_table(table, {**common, **specific}, where, problems)
        if not values:
            continue
        meter = _meter_from(values, specific)
        if meter.id in seen:
            problems.add(f"{where}.id", f"duplicate meter id {meter.id!r}")
        seen.add(meter.id)
        _claim_sub_meters(plugin, meter, where, seen, problems)
        if meter.bus not in buses:
            declared = ", ".join(sorted(buses)) or "none"
            problems.add(f"{where}.bus", f"bus {meter.bus!r} is not declared "
                                         f"(declared buses: {declared})")
        else:
            _check_meter_on_bus(meter, plugin, buses[meter.bus], where, problems)
            first = bus_protocols.setdefault(meter.bus, (meter.protocol, meter.id))
            if first[0] != meter.protocol:
                problems.add(f"{where}.protocol", f"bus {meter.bus!r} already carries "
                                                  f"{first[0]} meters (meter {first[1]!r}); "
                                                  "one protocol per bus")
        key = (meter.bus, str(values.get("address")))
        if values.get("address") not in (None, "") and key in addresses:
            problems.add(f"{where}.address", f"address {key[1]} on bus {key[0]!r} is already "
                                             f"used by meter {addresses[key]!r}")
        addresses.setdefault(key, meter.id)
        placed.append((where, meter))
    return placed


def _claim_sub_meters(plugin: ProtocolPlugin | None, meter: MeterConfig, where: str,
                      seen: set[str], problems: Problems) -> None:
    """The meter ids a meter brings (its plugin's `sub_meters`) are meter ids too: unique."""
    if plugin is None or plugin.sub_meters is None:
        return
    for sub in plugin.sub_meters(meter):
        if sub.meter_id in seen:
            problems.add(f"{where}.{sub.key}", f"duplicate meter id {sub.meter_id!r}")
        seen.add(sub.meter_id)


def _check_meter_on_bus(meter: MeterConfig, plugin: ProtocolPlugin | None, bus: BusConfig,
                        where: str, problems: Problems) -> None:
    if plugin is not None and bus.kind not in plugin.transports:
        need = " or ".join(sorted(plugin.transports))
        problems.add(f"{where}.protocol", f"{meter.protocol} meters need a {need} bus; "
                                          f"bus {bus.id!r} is {bus.kind}")


def _settle_buses(entries: list[_BusEntry], placed: list[tuple[str, MeterConfig]],
                  problems: Problems) -> list[BusConfig]:
    """Each bus belongs to the plugin of its meters (or, with none, to the plugin whose keys it
    sets): it keeps that plugin's keys, and the plugin checks the bus with its meters."""
    buses = []
    for entry in entries:
        on_bus = [(w, m) for w, m in placed if m.bus == entry.bus.id]
        plugin = _plugin_named(on_bus[0][1].protocol) if on_bus else \
            next((p for p in _plugins() if entry.plugin_keys & set(p.bus_fields)), None)
        if plugin is None:
            buses.append(dataclasses.replace(entry.bus, options={}))
            continue
        options = {k: v for k, v in entry.bus.options.items() if k in plugin.bus_fields}
        bus = dataclasses.replace(entry.bus, protocol=plugin.name, options=options)
        plugin.check(bus, entry.where, [(w, m) for w, m in on_bus if m.protocol == plugin.name],
                     problems)
        buses.append(bus)
    return buses


def _meter_from(values: dict[str, Any], specific: dict[str, Field]) -> MeterConfig:
    options = {k: values[k] for k in specific if k not in ("address", "profile")}
    return MeterConfig(
        id=values["id"],
        bus=values["bus"],
        protocol=values["protocol"],
        address=_address(values.get("address")),
        poll_interval_s=values["poll_interval_s"],
        profile=values.get("profile") or "",
        commodity=values["commodity"],
        timeout_ms=values["timeout_ms"],
        options=options,
    )


def _address(value: Any) -> int | str:
    return value if isinstance(value, int | str) else ""
