"""The protocol plugin contract: what one protocol package declares so the gateway can run it.

A protocol package exports one `ProtocolPlugin` (in `drivers/<proto>/plugin.py`). The gateway
keeps one list of them and knows no protocol by name: the config loader validates a bus and its
meters against the plugin's fields and checks, the service opens buses through `open_polled` or
`open_pushed`, the console reads typed counters and calls the optional capabilities.
Klipper's `load_config(config)` and zigpy-znp's `CONFIG_SCHEMA.extend` are the models: the
feature module owns its keys, its commands and how it starts.

Drivers never import `gateway/` or `board/`: what a plugin needs is handed to it in `Context`
(the board's serial opener as a callable, an event sink, a clock, the data directory).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from core.clock import Clock
from core.schema import Field, Problems
from drivers.readings import Sample

Kind = Literal["polled", "pushed"]  # polled: the scheduler asks; pushed: the meter sends
EventSink = Callable[[str, str | None, dict[str, Any], str], None]  # kind, meter, data, severity
Accept = Callable[[str, list[Sample], int], None]  # meter id, samples, ts_ms
CommandHandler = Callable[[dict[str, Any], Any], Awaitable[dict[str, Any]]]  # args, ctx
# The counter names every plugin reports (gateway/console/ports.py STANDARD_COUNTERS too).
STANDARD_COUNTERS = ("ok", "timeouts", "checksum", "other")


class BusView(Protocol):
    """The generic keys of a `[[bus]]` (gateway.config.loader.BusConfig) and the plugin's own
    keys in `options`."""

    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> str: ...  # "serial" | "tcp"

    @property
    def port(self) -> str: ...

    @property
    def baudrate(self) -> int: ...

    @property
    def bytesize(self) -> int: ...

    @property
    def parity(self) -> str: ...

    @property
    def stopbits(self) -> int: ...

    @property
    def rs485(self) -> dict[str, Any]: ...

    @property
    def inter_request_gap_ms(self) -> int: ...

    @property
    def host(self) -> str: ...

    @property
    def tcp_port(self) -> int: ...

    @property
    def options(self) -> dict[str, Any]: ...


class MeterView(Protocol):
    """A `[[meter]]`: the generic keys, and the plugin's `meter_fields` values in `options`."""

    @property
    def id(self) -> str: ...

    @property
    def bus(self) -> str: ...

    @property
    def protocol(self) -> str: ...

    @property
    def address(self) -> int | str: ...

    @property
    def poll_interval_s(self) -> int: ...

    @property
    def profile(self) -> str: ...

    @property
    def commodity(self) -> str: ...

    @property
    def timeout_ms(self) -> int: ...

    @property
    def options(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class SerialParams:
    """What a driver asks the board to open; the board maps it to its own serial spec."""

    port: str
    baudrate: int
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1
    rs485: dict[str, Any] = field(default_factory=dict)


# The command line's port opener: a port as typed (a path or a by-id name) -> an opener of that
# port, resolved now (PortUnavailable naming the device when it is not there).
PortOpener = Callable[[str], Callable[["SerialParams"], Any]]
CliRegister = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]", PortOpener], None]


@dataclass(frozen=True)
class Context:
    """What the gateway hands a plugin when it opens a bus."""

    # an open descriptor (board/ opened the port) that the transport kit's stream takes over
    # and closes; raises drivers.errors.PortUnavailable
    open_serial: Callable[[SerialParams], Any]
    events: EventSink
    clock: Clock
    data_dir: Path  # beside the database: default files (keys) live here
    # (meter id, series) -> the newest instant (UTC ms) of that series the gateway has stored,
    # None if none: where a plugin reads a meter's profile or closures on from (Sample.at_ms)
    records_until: Callable[[str, str], int | None] = field(default=lambda _m, _s: None)
    # whether the gateway's clock is synchronised now (NTP, or set by a technician): a plugin
    # sets a meter's clock from `clock` only then
    clock_synced: Callable[[], bool] = field(default=lambda: False)


class MeterBus(Protocol):
    """An opened polled bus: read one meter, its raw counters, close."""

    async def read(self, meter: MeterView) -> list[Sample]: ...

    def counters(self, meter_id: str) -> dict[str, int]: ...

    async def close(self) -> None: ...


class PushSource(Protocol):
    """An opened pushed bus: hands readings to `accept` as the meters send them."""

    bus_id: str

    async def run(self, accept: Accept) -> None: ...


class Breakers(Protocol):
    """Meters' own breakers (a DLMS disconnector) with prepay's relay interface: `drive`,
    `commanded` and `input_active` are synchronous and do no I/O (prepay calls them inside
    its transaction); `run` is the task that switches the meters over their buses and reads
    their state back, which `input_active` of a feedback name reports."""

    def drive(self, output: str, on: bool) -> None: ...

    def commanded(self, output: str) -> bool | None: ...

    def input_active(self, name: str) -> bool: ...

    async def run(self) -> None: ...


# (meter id -> (its opened bus, its MeterView), {relay output name: meter id}, {feedback input
# name: meter id}, the service's clock) -> the breakers of those meters
OpenBreakers = Callable[[Callable[[str], tuple[Any, "MeterView"]], Mapping[str, str],
                         Mapping[str, str], Clock], Breakers]


@dataclass(frozen=True)
class CounterSpec:
    """How a plugin's raw counter names map onto the standard four (the rest stay as they are).

    `ok` names the success count; `timeouts` and `checksum` the error counts that sum into those;
    `not_errors` the informational ones. Any other non-zero count is an `other` error.
    """

    ok: str
    timeouts: frozenset[str] = frozenset()
    checksum: frozenset[str] = frozenset()
    not_errors: frozenset[str] = frozenset()

    def typed(self, raw: Mapping[str, int]) -> dict[str, int]:
        """The standard four first, then the plugin's own raw counts."""
        known = {self.ok} | self.timeouts | self.checksum | self.not_errors
        typed = {
            "ok": raw.get(self.ok, 0),
            "timeouts": sum(v for k, v in raw.items() if k in self.timeouts),
            "checksum": sum(v for k, v in raw.items() if k in self.checksum),
            "other": sum(v for k, v in raw.items() if k not in known),
        }
        return typed | {k: v for k, v in raw.items() if k not in typed}


@dataclass(frozen=True)
class Found:
    """A device a scan found: its address as the config writes it, and what it said."""

    address: str
    description: str


@dataclass(frozen=True)
class SubMeter:
    """A meter id a configured meter brings with it (a P1 meter's gas meter on M-Bus channel 1).

    `key` is where the config names it, relative to the meter table ("mbus_meters.1")."""

    key: str
    address: str
    meter_id: str


@dataclass(frozen=True)
class Simulation:
    """A running simulated site for the demo: its `[[bus]]`/`[[meter]]` TOML and how to stop."""

    toml: str
    meters: int
    buses: int
    stop: Callable[[], None]


# check(bus, bus_where, [(meter_where, meter)], problems): config problems of one bus
BusCheck = Callable[[BusView, str, Sequence[tuple[str, MeterView]], Problems], None]
Scan = Callable[[Any, Sequence[MeterView], float], Awaitable[list[Found]]]
# What a technician checks first when a meter gives nothing: the console's default hint.
SILENT_HINT = "check the wiring, the address and the bus settings"


ConsoleRole = Literal["viewer", "technician", "admin"]  # the console's roles, lowest first
# (the opened bus, the words typed after BUS) -> the lines to show; raises ValueError for words
# that do not fit the usage and drivers.errors.DriverError when the device fails
ConsoleRun = Callable[[Any, list[str]], Awaitable[list[str]]]
CONSOLE_COMMAND_MAX_S = 90.0  # the console client waits this plus a margin for any command


@dataclass(frozen=True)
class ConsoleCommand:
    """A console command a protocol brings: `NAME BUS ARGS...` on a bus of that protocol.

    The console lists it in `help` with its usage, role and help, checks the role on the
    service side (over the control socket the logged-in role, whatever the client says), and
    runs it on the opened bus with `timeout_s`; the lines it returns are shown as they are.
    """

    name: str  # one word, unique among the console's commands and every plugin's
    usage: str  # the words after BUS: "SLAVE START [COUNT] [holding|input]"
    help: str  # one line for `help`
    run: ConsoleRun
    role: ConsoleRole = "technician"
    details: str = ""  # more for `help NAME`
    timeout_s: float = 30.0
    changes: bool = False  # it changes the device: the console asks to confirm and audits it

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or not self.name.islower():
            raise TypeError(f"console command {self.name!r}: one lower-case word")
        if not 0 < self.timeout_s <= CONSOLE_COMMAND_MAX_S:
            raise TypeError(f"console command {self.name!r}: timeout_s must be in "
                            f"(0, {CONSOLE_COMMAND_MAX_S:g}]")


@dataclass(frozen=True)
class ScanCapability:
    """A plugin's scan: how it runs, and what it does in words (the console's `help scan`
    lists the `help` of every plugin that has a scan, so the console names no protocol)."""

    run: Scan  # (opened bus, its configured meters, seconds) -> found devices
    help: str  # one sentence: "asks every slave id 1..247 in turn"


def no_check(bus: BusView, where: str, meters: Sequence[tuple[str, MeterView]],
             problems: Problems) -> None:
    """The default: the fields say everything."""


@dataclass(frozen=True)
class ProtocolPlugin:
    """One protocol, declared. Only `name`, `kind`, the fields and one `open_*` are required."""

    name: str  # the `protocol` value of its meters in the config
    kind: Kind
    meter_fields: Mapping[str, Field]  # `address` included; values land in MeterConfig.options
    counters: CounterSpec
    bus_fields: Mapping[str, Field] = field(default_factory=dict)  # beside the generic bus keys
    transports: frozenset[str] = frozenset({"serial"})  # which bus `kind`s it runs on
    check: BusCheck = no_check  # config-time checks beyond the fields (pure, no files)
    # start-up checks on files the keys name (run by `check-config` and `run`)
    check_files: Callable[[BusView, str, Problems], None] | None = None
    # bus options with their file paths resolved: (options, resolve(path) -> Path, data_dir)
    resolve_paths: Callable[[dict[str, Any], Callable[[str], Path], Path],
                            dict[str, Any]] | None = None
    sub_meters: Callable[[MeterView], list[SubMeter]] | None = None
    open_polled: Callable[[BusView, Context], MeterBus] | None = None
    open_pushed: Callable[[BusView, Sequence[MeterView], Context], PushSource] | None = None
    # raw counters of an opened pushed source: (source, meter id or None for the bus)
    pushed_counters: Callable[[Any, str | None], Mapping[str, int]] | None = None
    scan: ScanCapability | None = None
    # what to check when its meters give nothing (shown by the console with the error)
    silent_hint: str = SILENT_HINT
    # the meter keys an opened bus holds: (key id, configured meter id or None); never the key
    keys: Callable[[Any], list[tuple[str, str | None]]] | None = None
    # uplink server commands: op -> factory(opened sources of this plugin) -> handler
    server_commands: Mapping[str, Callable[[Callable[[], Sequence[Any]]], CommandHandler]] = \
        field(default_factory=dict)
    # its own console commands, run on an opened bus of this protocol
    console_commands: tuple[ConsoleCommand, ...] = ()
    cli: CliRegister | None = None  # (subparsers, port opener): its `gateway <proto> ...`
    simulate: Callable[[Path, int], Simulation] | None = None  # (state dir, poll s) for the demo
    # its meters' own breakers as prepay relays ([prepay.meters.ID] breaker = "meter")
    breakers: OpenBreakers | None = None

    def __post_init__(self) -> None:
        opener = self.open_polled if self.kind == "polled" else self.open_pushed
        if opener is None:
            raise TypeError(f"protocol plugin {self.name!r} is {self.kind} but has no "
                            f"open_{self.kind}")
