"""The gateway's one TOML config file: loaded with tomllib, validated whole before anything starts.

Every problem (unknown key, missing field, wrong type, duplicate meter id, two buses on one
port, a meter on an undeclared bus, and what each protocol plugin checks) is reported at once,
each naming the file and the key; the CLI then exits with status 2. The protocol keys of a bus
and a meter are declared by the protocol plugins (gateway/wiring/protocols.py lists them).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import MeterGatewayError
from core.logs import trace_list_problem
from core.schema import (
    Field,
    Problems,
    identifier,
    in_range,
    non_empty,
    one_of,
    opt,
    positive,
    req,
    time_zone,
    validate_table,
)
from gateway.analytics.settings import analytics_section
from gateway.app.exception_report import report_section
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
from gateway.config.tables import (
    BUS_FIELDS,
    COMMODITIES,
    METER_COMMON,
    RS485_FIELDS,
    BusConfig,
    MeterConfig,
    bus_fields,
    buses_and_meters,
    meter_fields_by_protocol,
    plugin_named,
    protocol_names,
)
from gateway.remote.settings import remote_section


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
    analytics: Any = None  # gateway.analytics.settings.AnalyticsSettings with [analytics]
    log_trace: tuple[str, ...] = ()  # protocols whose wire bytes are logged at TRACE
    remote: Any = None  # gateway.remote.settings.RemoteSettings ([remote], defaults if absent)
    report: Any = None  # gateway.app.exception_report.ReportSettings ([report_by_exception])

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
    "analytics": opt(dict, None),
    "remote": opt(dict, None),
    "report_by_exception": opt(dict, None),
}

STORAGE_FIELDS = {
    "path": req(str, non_empty),
    "max_mb": opt(int, 1024, positive),
    "commit_interval_ms": opt(int, 1000, in_range(50, 60_000)),
}

LOG_FIELDS = {
    "level": opt(str, "info", one_of("debug", "info", "warning", "error")),
    # raw wire bytes at TRACE for these protocols (the console switches them at run time)
    "trace": opt(list, [], lambda names: trace_list_problem(names, protocol_names())),
}

BOARD_FIELDS = {
    "kind": opt(str, "simulated", one_of("simulated", "rpi")),
    "state_dir": opt(str, ""),
    "profile": opt(str, ""),
    "bindings": opt(dict, {}),
    "hardware_watchdog": opt(str, ""),
    "modem_stuck_after_s": opt(int, 600, positive),
}

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
    buses, meters = buses_and_meters(top["bus"], top["meter"], problems)
    sections = {k: top[k] for k in ("uplink", "prepay", "console") if top[k] is not None}
    uplink = uplink_section(sections.get("uplink"), top["gateway_id"], problems)
    prepay = prepay_section(sections.get("prepay"), {m.id: m.protocol for m in meters},
                            problems)
    console = console_section(sections.get("console"), problems)
    analytics = analytics_section(top["analytics"], top["timezone"] or "UTC",
                                  {m.id: m.commodity for m in meters}, problems)
    remote = remote_section(top["remote"], problems)
    report = report_section(top["report_by_exception"], {m.id: m.profile for m in meters},
                            problems)
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
        buses=tuple(resolved_bus_paths(buses, plugin_named, db_path, base)),
        meters=tuple(meters),
        sections=sections,
        uplink=resolved_uplink(uplink, base),
        prepay=resolved_prepay(prepay, base),
        console=console,
        analytics=analytics,
        remote=remote,
        report=report,
    )


__all__ = ["BOARD_FIELDS", "BUS_FIELDS", "COMMODITIES", "LOG_FIELDS", "METER_COMMON",
           "RS485_FIELDS", "STORAGE_FIELDS", "TOP_FIELDS", "BusConfig", "ConfigError",
           "GatewayConfig", "MeterConfig", "StorageConfig", "bus_fields", "load_config",
           "meter_fields_by_protocol"]
