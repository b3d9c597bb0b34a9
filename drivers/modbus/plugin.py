"""The Modbus RTU/TCP protocol plugin: its meter keys, its profile checks, how a bus opens, scan."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.schema import Problems, exact_ratio, in_range, one_of, opt, ratio_check, req
from drivers.modbus.console import REGISTERS
from drivers.plugin import (
    BusView,
    Context,
    CounterSpec,
    Found,
    MeterView,
    ProtocolPlugin,
    ScanCapability,
    SerialParams,
    Simulation,
)
from drivers.readings import Sample

SCAN_ADDRESSES = range(1, 248)  # every unicast slave id (0 is broadcast, 248+ reserved)
SCAN_PROBE_TIMEOUT_S = 0.1  # a Modbus meter answers within ~50 ms; 247 ids stay under 40 s


class ModbusMeterBus:
    """Adapter from a configured bus to drivers.modbus.master.ModbusBus."""

    def __init__(self, bus: BusView, context: Context) -> None:
        from drivers.modbus.master import ModbusBus, SerialBusSpec, TcpBusSpec
        from drivers.transport.serial import RtsDirection

        gap_s = bus.inter_request_gap_ms / 1000
        spec: SerialBusSpec | TcpBusSpec
        if bus.kind == "tcp":
            spec = TcpBusSpec(bus.host, bus.tcp_port, inter_request_gap_s=gap_s,
                              framing=bus.options.get("framing") or "mbap")
        else:
            spec = SerialBusSpec(bus.port, baudrate=bus.baudrate, bytesize=bus.bytesize,
                                 parity=bus.parity, stopbits=bus.stopbits,
                                 inter_request_gap_s=gap_s, rts=RtsDirection.from_rs485(bus.rs485))
        # the board opens the port at every (re)connect: a by-id link is resolved then, so a
        # re-plugged adapter on a new ttyUSBn is found (the kit takes the port's descriptor)
        params = SerialParams(bus.port, bus.baudrate, bus.bytesize, bus.parity, bus.stopbits,
                              dict(bus.rs485))
        self.driver = ModbusBus(spec, open_fd=lambda: context.open_serial(params),
                                clock=context.clock.monotonic,
                                on_event=context.events)  # e.g. a register "not available"
        self.events = context.events  # the audit of register writes
        self.known_meters: dict[str, MeterView] = {}  # read at least once: commands find them

    async def read(self, meter: MeterView) -> list[Sample]:
        from drivers.modbus.profiles import get_profile

        self.known_meters[meter.id] = meter
        return await self.driver.read_meter(
            meter.id, int(meter.address), get_profile(meter.profile),
            ct_ratio=ratios(meter)[0], vt_ratio=ratios(meter)[1],
            timeout_s=meter.timeout_ms / 1000)

    def counters(self, meter_id: str) -> dict[str, int]:
        return dict(self.driver.counters(meter_id))

    async def close(self) -> None:
        await self.driver.close()


def ratios(meter: MeterView) -> tuple[Decimal, Decimal]:
    """The exact current and voltage transformer ratios (parsed at load), 1 when not given."""
    return (meter.options.get("ct_ratio") or Decimal(1),
            meter.options.get("vt_ratio") or Decimal(1))


def _check(bus: BusView, where: str, meters: Sequence[tuple[str, MeterView]],
           problems: Problems) -> None:
    """Every meter names a known register profile; one reporting secondary values its ratios."""
    from drivers.modbus.profiles import get_profile, profile_names

    profiles = set(profile_names())
    if bus.options.get("framing") == "mbap" and bus.kind != "tcp":
        problems.add(f"{where}.framing", "MBAP is Modbus TCP's header: a serial bus is always "
                                         "RTU (give kind = \"tcp\" for a TCP device)")
    for meter_where, meter in meters:
        name = meter.profile
        if name not in profiles:
            problems.add(f"{meter_where}.profile", f"unknown profile {name!r} "
                                                   f"(known: {', '.join(sorted(profiles))})")
            continue
        if get_profile(name).needs_ratios:
            for key in ("ct_ratio", "vt_ratio"):
                if meter.options.get(key) is None:
                    problems.add(f"{meter_where}.{key}", f"missing (profile {name!r} reports "
                                 "secondary values: give the transformer ratio, 1 if none)")


async def _scan(opened: Any, meters: Sequence[MeterView], seconds: float) -> list[Found]:
    """Ask every slave id; the driver's per-bus lock interleaves the probes with the polls."""
    found = await opened.driver.scan(SCAN_ADDRESSES, SCAN_PROBE_TIMEOUT_S)
    return [Found(str(address), "answers Modbus") for address in found]


def _write(sources: Any) -> Any:
    from drivers.modbus.commands import write_command

    return write_command(sources)


def _simulate(state_dir: Path, poll_interval_s: int) -> Simulation:
    import sys

    from drivers.modbus.site import DEMO_SITE, buses_toml, start_simulators

    sim = start_simulators(DEMO_SITE, state_dir / "sim", stderr=sys.stderr)
    return Simulation(buses_toml(sim, poll_interval_s=poll_interval_s),
                      sum(len(b.meters) for b in DEMO_SITE), len(DEMO_SITE), sim.stop)


PLUGIN = ProtocolPlugin(
    name="modbus",
    kind="polled",
    transports=frozenset({"serial", "tcp"}),
    bus_fields={
        # tcp: "mbap" (Modbus TCP, the default) or "rtu" (RTU frames through a serial device
        # server such as a Moxa NPort or a USR converter in its raw TCP mode)
        "framing": opt(str, "", one_of("", "mbap", "rtu")),
    },
    meter_fields={
        "address": req(int, in_range(1, 247)),
        "profile": req(str),
        "ct_ratio": opt((int, str), None, ratio_check, parse=exact_ratio),
        "vt_ratio": opt((int, str), None, ratio_check, parse=exact_ratio),
    },
    counters=CounterSpec(
        ok="reads_ok",
        timeouts=frozenset({"timeout", "port_unavailable"}),
        checksum=frozenset({"crc"}),
        not_errors=frozenset({"reads", "requests", "retries", "skipped_backoff", "values",
                              "values_absent"}),
    ),
    check=_check,
    open_polled=ModbusMeterBus,
    scan=ScanCapability(_scan, "asks every slave id 1..247 in turn, between the polls."),
    console_commands=(REGISTERS,),
    server_commands={"modbus.write": _write},
    simulate=_simulate,
)
