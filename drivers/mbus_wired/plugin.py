"""The wired M-Bus protocol plugin ("mbus", polled): keys, open, counters, scan, CLI, demo."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from core.schema import Problems, in_range, one_of, opt, req
from drivers.mbus_wired.meter_address import address_check
from drivers.plugin import (
    BusView,
    Context,
    CounterSpec,
    Found,
    MeterView,
    PortOpener,
    ProtocolPlugin,
    ScanCapability,
    Simulation,
)
from drivers.readings import Sample

METER_BAUDS: Final = (300, 600, 1200, 2400, 4800, 9600)
TCP_CONNECT_TIMEOUT_S: Final = 5.0
PROTOCOL: Final = "mbus"


def stream_opener(bus: BusView, context: Context) -> Any:
    """baud -> an open 8E1 stream: a serial port the board opens, or a TCP converter."""
    from drivers.mbus_wired.bus import serial_params
    from drivers.transport.serial import SerialStream, take_descriptor
    from drivers.transport.stream import LineSettings
    from drivers.transport.tcp import TcpStream

    async def open_stream(baud: int) -> Any:
        if bus.kind == "tcp":
            stream = await TcpStream.connect(bus.host, bus.tcp_port, protocol=PROTOCOL,
                                             timeout_s=TCP_CONNECT_TIMEOUT_S)
            stream.set_line(LineSettings(baud, 8, "E", 1))
            return stream
        opened = context.open_serial(serial_params(bus.port, baud, bus.rs485))
        return SerialStream(take_descriptor(opened), LineSettings(baud, 8, "E", 1),
                            name=bus.port, protocol=PROTOCOL)
    return open_stream


class MbusMeterBus:
    """Adapter from a configured bus to drivers.mbus_wired.bus.MbusBus."""

    def __init__(self, bus: BusView, context: Context) -> None:
        from drivers.mbus_wired.bus import MbusBus

        self.scan_kind = bus.options.get("scan", "secondary")
        self.driver = MbusBus(stream_opener(bus, context), baud=bus.baudrate, name=bus.id,
                              attempts=bus.options.get("attempts", 3),
                              echo=bus.options.get("converter_echo", "auto"),
                              wall_s=lambda: context.clock.wall_ms() / 1000,
                              monotonic=context.clock.monotonic)

    async def read(self, meter: MeterView) -> list[Sample]:
        return await self.driver.read_meter(meter.id, meter_settings(meter.address,
                                                                     meter.options))

    def counters(self, meter_id: str) -> dict[str, int]:
        return self.driver.counters(meter_id)

    async def close(self) -> None:
        await self.driver.close()


def meter_settings(address: int | str, options: Mapping[str, Any]) -> Any:
    """The driver's MeterSettings from values the fields below already validated."""
    from drivers.mbus_wired.bus import MeterSettings
    from drivers.mbus_wired.meter_address import parse_meter_address

    return MeterSettings(
        parse_meter_address(address), baud=options.get("baud"),
        application_reset=bool(options.get("application_reset")),
        select_data=options.get("select_data"), clock_sync=bool(options.get("clock_sync")),
        utc_offset_min=options.get("utc_offset_min") or 0,
        max_telegrams=options.get("max_telegrams", 16))


def _check(bus: BusView, where: str, meters: Sequence[tuple[str, MeterView]],
           problems: Problems) -> None:
    """Addresses unique however they are written (`5` and `"5"`, hex in any case)."""
    from drivers.mbus_wired.meter_address import address_text, parse_meter_address

    seen: dict[str, str] = {}
    for meter_where, meter in meters:
        try:
            text = address_text(parse_meter_address(meter.address))
        except ValueError:
            continue   # the field's check has said it
        if text in seen:
            problems.add(f"{meter_where}.address", f"address {text} is also meter "
                                                   f"{seen[text]!r}'s")
        seen.setdefault(text, meter.id)


async def _scan(opened: Any, meters: Sequence[MeterView], seconds: float) -> list[Found]:
    """The secondary search over the whole bus (primary addresses of the meters it finds in
    the description), or with `scan = "primary"` SND_NKE to 0..250. Bounded by `seconds`:
    what was found by then; the next scan carries an unfinished search on."""
    from drivers.mbus_wired.meter_address import secondary_hex

    if opened.scan_kind == "primary":
        scan = await opened.driver.scan_primary(seconds=seconds or None)
        hits = [Found(str(a), "answers SND_NKE") for a in scan.answered]
        hits += [Found(str(a), "garbled answer: several meters on this address?")
                 for a in scan.garbled]
        if scan.timed_out:
            hits.append(Found("?", f"scan stopped after {seconds:g} s"))
        return hits
    result = await opened.driver.search(seconds=seconds or None, resume=True)
    hits = [Found(secondary_hex(m.address), f"{m.address.text()} primary {m.primary}")
            for m in result.meters]
    hits += [Found(f"{p.id}?", "several meters share this id (search by manufacturer)")
             for p in result.unresolved]
    if result.timed_out:
        hits.append(Found("?", f"search paused after {seconds:g} s with {len(result.pending)} "
                               "patterns to go: scan again to carry on"))
    return hits


def _register_cli(sub: Any, open_port: PortOpener) -> None:
    from drivers.mbus_wired.cli import register

    register(sub, open_port)


def _simulate(state_dir: Path, poll_interval_s: int) -> Simulation:
    from drivers.mbus_wired.site import simulate_wired

    return simulate_wired(state_dir, poll_interval_s)


PLUGIN = ProtocolPlugin(
    name=PROTOCOL,
    kind="polled",
    transports=frozenset({"serial", "tcp"}),
    bus_fields={
        # "on": the converter echoes every byte and a missing echo is an error; auto / off:
        # an exact echo is recognised and dropped wherever it comes
        "converter_echo": opt(str, "auto", one_of("auto", "on", "off")),
        "attempts": opt(int, 3, in_range(1, 5)),
        "scan": opt(str, "secondary", one_of("secondary", "primary")),  # the console's scan
    },
    meter_fields={
        "address": req((int, str), address_check),
        "baud": opt(int, None, one_of(*METER_BAUDS)),
        "application_reset": opt(bool, False),
        "select_data": opt(int, None, in_range(0, 255)),
        "clock_sync": opt(bool, False),
        "utc_offset_min": opt(int, None, in_range(-720, 840)),
        "max_telegrams": opt(int, 16, in_range(1, 64)),
    },
    counters=CounterSpec(
        ok="reads_ok",
        timeouts=frozenset({"timeouts", "e5_missing", "port_unavailable", "echo_missing"}),
        checksum=frozenset({"checksum"}),
        not_errors=frozenset({"telegrams", "baud_switches", "clock_syncs"}),
    ),
    check=_check,
    open_polled=MbusMeterBus,
    scan=ScanCapability(_scan, "walks the secondary address tree (wildcard selects) and "
                               "lists every meter with its primary address."),
    silent_hint="check the level converter's power and the bus pair, the meter's address "
                "(scan finds it) and baud",
    cli=_register_cli,
    simulate=_simulate,
)
