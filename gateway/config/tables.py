"""The [[bus]] and [[meter]] tables: their generic keys, each protocol plugin's own, and the
checks that span them (ids, endpoints, addresses, one protocol per bus, the plugin's checks).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.schema import (
    Field,
    Problems,
    identifier,
    in_range,
    non_negative,
    one_of,
    opt,
    req,
    validate_table,
)

if TYPE_CHECKING:
    from drivers.plugin import ProtocolPlugin

COMMODITIES = ("electricity", "water", "heat")


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


def protocol_names() -> list[str]:
    return [plugin.name for plugin in _plugins()]


def _meter_common() -> dict[str, Field]:
    names = [plugin.name for plugin in _plugins()]
    return {**METER_COMMON, "protocol": req(str, one_of(*names))}


def buses_and_meters(raw_buses: Any, raw_meters: Any,
                     problems: Problems) -> tuple[list[BusConfig], list[MeterConfig]]:
    """The [[bus]] and [[meter]] arrays, validated together (a bus's keys depend on its meters)."""
    entries = _buses(raw_buses, problems)
    placed = _meters(raw_meters, {e.bus.id: e.bus for e in entries}, problems)
    return _settle_buses(entries, placed, problems), [meter for _where, meter in placed]


def plugin_named(name: str) -> ProtocolPlugin | None:
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
        plugin = plugin_named(protocol) if isinstance(protocol, str) else None
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
        plugin = plugin_named(on_bus[0][1].protocol) if on_bus else \
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
