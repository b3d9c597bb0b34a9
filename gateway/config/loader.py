"""The gateway's one TOML config file: loaded with tomllib, validated whole before anything starts.

Every problem (unknown key, missing field, wrong type, duplicate meter id, unknown profile, two
buses on one port, a meter on an undeclared bus) is reported at once, each naming the file and
the key; the CLI then exits with status 2.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.errors import MeterGatewayError
from core.schema import (
    Field,
    Problems,
    exact_ratio,
    identifier,
    in_range,
    non_empty,
    non_negative,
    one_of,
    opt,
    positive,
    ratio_check,
    req,
    time_zone,
    validate_table,
)
from drivers.modbus.profiles import profile_names
from gateway.config.sections import (
    console_section,
    prepay_section,
    resolve,
    resolved_board,
    resolved_bus_key_files,
    resolved_prepay,
    resolved_uplink,
    uplink_section,
)

PROTOCOLS = ("modbus", "iec62056", "dsmr", "wmbus")
PUSH_PROTOCOLS = ("dsmr", "wmbus")  # the meter talks when it wants; nothing to poll
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
    dongle: str = ""
    link_mode: str = ""
    echo: bool = False
    key_file: str = ""

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
    profile: str = ""
    commodity: str = "electricity"
    timeout_ms: int = 1000
    ct_ratio: Decimal = Decimal(1)
    vt_ratio: Decimal = Decimal(1)
    options: dict[str, Any] = field(default_factory=dict)  # protocol-specific keys


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

LOG_FIELDS = {"level": opt(str, "info", one_of("debug", "info", "warning", "error"))}

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
    "dongle": opt(str, "", one_of("", "im871a", "amb8465", "lines")),
    "link_mode": opt(str, "", one_of("", "T1", "C1", "C1+T1", "S1")),
    "echo": opt(bool, False),
    "key_file": opt(str, ""),
}


def _mbus_channels(value: dict[str, Any]) -> str | None:
    """`{1 = "home-gas"}`: channels 1..4 of the P1 meter, each with a meter id of its own."""
    for channel, meter_id in value.items():
        if channel not in ("1", "2", "3", "4"):
            return f"{channel!r} is not an M-Bus channel (1, 2, 3 or 4)"
        if not isinstance(meter_id, str) or identifier(meter_id) is not None:
            return f"channel {channel}: the meter id {meter_id!r} {identifier('')}"
    return None


METER_COMMON = {
    "id": req(str, identifier),
    "bus": req(str),
    "protocol": req(str, one_of(*PROTOCOLS)),
    "commodity": opt(str, "electricity", one_of(*COMMODITIES)),
    "poll_interval_s": opt(int, 60, in_range(1, 86_400)),
    # up to 5 min: a 3 kB optical readout at 300 baud takes about 100 s
    "timeout_ms": opt(int, 1000, in_range(10, 300_000)),
}

METER_BY_PROTOCOL: dict[str, dict[str, Field]] = {
    "modbus": {
        "address": req(int, in_range(1, 247)),
        "profile": req(str),
        "ct_ratio": opt((int, str), None, ratio_check),
        "vt_ratio": opt((int, str), None, ratio_check),
    },
    "iec62056": {
        "address": opt(str, ""),
        "mode": opt(str, "C", one_of("A", "B", "C")),
        "max_baud": opt(int, 9600, one_of(300, 600, 1200, 2400, 4800, 9600, 19200)),
        "password": opt(str, ""),
        "obis": opt(list, []),
        "clock_drift_limit_s": opt(int, 30, positive),
        "read_command": opt(str, "R1", one_of("R1", "R5")),
        "utc_offset_min": opt(int, None, in_range(-720, 840)),
    },
    "dsmr": {
        "address": opt(str, ""),
        # the meter clock's winter-time (W) offset from UTC; DSMR is Dutch: CET, S is one more hour
        "utc_offset_min": opt(int, 60, in_range(-720, 840)),
        # M-Bus channel n (0-n:24.2.1) -> the meter id its gas / water / heat readings are stored as
        "mbus_meters": opt(dict, {}, _mbus_channels),
    },
    "wmbus": {
        "address": req(str),
        "manufacturer": opt(str, ""),
        "device_type": opt(int, None, in_range(0, 255)),
    },
}


def _claim_sub_meters(values: dict[str, Any], where: str, seen: set[str],
                      problems: Problems) -> None:
    """A P1 meter's sub-meter ids are meter ids too: unique among all of them."""
    for channel, sub_id in (values.get("mbus_meters") or {}).items():
        if isinstance(sub_id, str) and sub_id in seen:
            problems.add(f"{where}.mbus_meters.{channel}", f"duplicate meter id {sub_id!r}")
        if isinstance(sub_id, str):
            seen.add(sub_id)


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
    buses = _buses(top["bus"], problems)
    meters = _meters(top["meter"], {b.id: b for b in buses}, problems)
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
        board=resolved_board(board, db_path, base),
        buses=tuple(resolved_bus_key_files(buses, db_path, base)),
        meters=tuple(meters),
        sections=sections,
        uplink=resolved_uplink(uplink, base),
        prepay=resolved_prepay(prepay, base),
        console=console,
    )


def _table_list(value: Any, name: str, problems: Problems) -> list[tuple[str, Any]]:
    if not isinstance(value, list):
        problems.add(name, f"must be an array of tables ([[{name}]])")
        return []
    return [(f"{name}[{i}]", item) for i, item in enumerate(value)]


def _buses(raw: Any, problems: Problems) -> list[BusConfig]:
    buses: list[BusConfig] = []
    ids: set[str] = set()
    endpoints: dict[str, str] = {}
    for where, table in _table_list(raw, "bus", problems):
        values = validate_table(table, BUS_FIELDS, where, problems)
        if not values:
            continue
        values["rs485"] = validate_table(values["rs485"], RS485_FIELDS, f"{where}.rs485",
                                         problems) if values["rs485"] else {}
        if values["kind"] == "serial" and not values["port"]:
            problems.add(f"{where}.port", "missing (required for a serial bus)")
        if values["kind"] == "tcp" and not values["host"]:
            problems.add(f"{where}.host", "missing (required for a tcp bus)")
        bus = BusConfig(**values)
        if bus.id in ids:
            problems.add(f"{where}.id", f"duplicate bus id {bus.id!r}")
        ids.add(bus.id)
        if bus.endpoint and bus.endpoint in endpoints:
            problems.add(f"{where}.port" if bus.kind == "serial" else f"{where}.host",
                         f"{bus.endpoint!r} is already used by bus {endpoints[bus.endpoint]!r}")
        endpoints.setdefault(bus.endpoint, bus.id)
        buses.append(bus)
    return buses


def _meters(raw: Any, buses: dict[str, BusConfig], problems: Problems) -> list[MeterConfig]:
    meters: list[MeterConfig] = []
    seen: set[str] = set()
    addresses: dict[tuple[str, str], str] = {}
    bus_protocols: dict[str, tuple[str, str]] = {}
    profiles = set(profile_names())
    for where, table in _table_list(raw, "meter", problems):
        protocol = table.get("protocol") if isinstance(table, dict) else None
        specific = METER_BY_PROTOCOL.get(protocol, {}) if isinstance(protocol, str) else {}
        values = validate_table(table, {**METER_COMMON, **specific}, where, problems)
        if not values:
            continue
        meter_id = values["id"]
        if meter_id in seen:
            problems.add(f"{where}.id", f"duplicate meter id {meter_id!r}")
        seen.add(meter_id)
        _claim_sub_meters(values, where, seen, problems)
        if values["bus"] not in buses:
            declared = ", ".join(sorted(buses)) or "none"
            problems.add(f"{where}.bus", f"bus {values['bus']!r} is not declared "
                                         f"(declared buses: {declared})")
        else:
            _check_meter_on_bus(values, buses[values["bus"]], where, problems)
            first = bus_protocols.setdefault(values["bus"], (values["protocol"], meter_id))
            if first[0] == "dsmr" and first[1] != meter_id:
                problems.add(f"{where}.bus", f"a P1 port carries one meter; bus "
                                             f"{values['bus']!r} already has {first[1]!r}")
            elif first[0] != values["protocol"]:
                problems.add(f"{where}.protocol", f"bus {values['bus']!r} already carries "
                                                  f"{first[0]} meters (meter {first[1]!r}); "
                                                  "one protocol per bus")
        key = (values["bus"], str(values.get("address")))
        if values.get("address") not in (None, "") and key in addresses:
            problems.add(f"{where}.address", f"address {key[1]} on bus {key[0]!r} is already "
                                             f"used by meter {addresses[key]!r}")
        addresses.setdefault(key, meter_id)
        if protocol == "modbus":
            _check_profile(values, profiles, where, problems)
        meters.append(_meter_from(values, specific))
    return meters


def _check_meter_on_bus(values: dict[str, Any], bus: BusConfig, where: str,
                        problems: Problems) -> None:
    if bus.kind == "tcp" and values["protocol"] != "modbus":
        problems.add(f"{where}.protocol", f"{values['protocol']} meters need a serial bus; "
                                          f"bus {bus.id!r} is tcp")
    if values["protocol"] == "wmbus" and not bus.dongle:
        problems.add(f"{where}.bus", f"wmbus meters need a bus with a `dongle` "
                                     f"(bus {bus.id!r} has none)")


def _check_profile(values: dict[str, Any], profiles: set[str], where: str,
                   problems: Problems) -> None:
    from drivers.modbus.profiles import get_profile

    name = values.get("profile")
    if name not in profiles:
        problems.add(f"{where}.profile", f"unknown profile {name!r} "
                                         f"(known: {', '.join(sorted(profiles))})")
        return
    if get_profile(name).needs_ratios:
        for key in ("ct_ratio", "vt_ratio"):
            if values.get(key) is None:
                problems.add(f"{where}.{key}", f"missing (profile {name!r} reports secondary "
                                               "values: give the transformer ratio, 1 if none)")


def _meter_from(values: dict[str, Any], specific: dict[str, Field]) -> MeterConfig:
    options = {k: values[k] for k in specific if k not in ("address", "profile", "ct_ratio",
                                                            "vt_ratio")}
    return MeterConfig(
        id=values["id"],
        bus=values["bus"],
        protocol=values["protocol"],
        address=_address(values.get("address")),
        poll_interval_s=values["poll_interval_s"],
        profile=values.get("profile") or "",
        commodity=values["commodity"],
        timeout_ms=values["timeout_ms"],
        ct_ratio=_ratio_or_one(values.get("ct_ratio")),
        vt_ratio=_ratio_or_one(values.get("vt_ratio")),
        options=options,
    )


def _address(value: Any) -> int | str:
    return value if isinstance(value, int | str) else ""


def _ratio_or_one(value: Any) -> Decimal:
    """The exact ratio, or 1 when absent or already reported as a problem."""
    if value is None or ratio_check(value) is not None:
        return Decimal(1)
    return exact_ratio(value)
