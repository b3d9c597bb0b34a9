"""The IEC 62056-21 protocol plugin (optical probe or RS-485 loop, polled): keys, open, counters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.schema import in_range, one_of, opt, positive
from drivers.plugin import (
    BusView,
    Context,
    CounterSpec,
    MeterView,
    PortOpener,
    ProtocolPlugin,
    SerialParams,
)
from drivers.readings import Sample

MAX_BAUDS = (300, 600, 1200, 2400, 4800, 9600, 19200)  # mode C's, as in the `max_baud` key


class Iec62056MeterBus:
    """Meters on one line read one after the other, with baud switching (7E1 as the standard
    says: the port is reopened at each baud the meter offers)."""

    def __init__(self, bus: BusView, context: Context) -> None:
        from drivers.iec62056.reader import Iec62056Bus

        def open_port(baud: int) -> Any:
            return context.open_serial(SerialParams(bus.port, baud, bytesize=7, parity="E",
                                                    stopbits=1, rs485=dict(bus.rs485)))

        def drifted(meter_id: str, drift_s: int) -> None:
            context.events("meter_clock_drift", meter_id, {"drift_s": drift_s}, "warning")

        self.driver = Iec62056Bus(open_port, echo=bool(bus.options.get("echo")), name=bus.id,
                                  clock=lambda: context.clock.wall_ms() / 1000,
                                  on_clock_drift=drifted)

    async def read(self, meter: MeterView) -> list[Sample]:
        return await self.driver.read_meter(meter.id, str(meter.address),
                                            meter_options(meter.options),
                                            meter.timeout_ms / 1000)

    def counters(self, meter_id: str) -> dict[str, int]:
        return dict(self.driver.counters(meter_id))

    async def close(self) -> None:
        await self.driver.close()


def meter_options(options: Mapping[str, Any]) -> Any:
    """The reader's MeterOptions from config values the fields below already validated (the
    reader does not check them a second time)."""
    from drivers.iec62056.reader import MeterOptions

    return MeterOptions(
        mode=options.get("mode", "C"), max_baud=options.get("max_baud", 9600),
        password=options.get("password") or None, obis=tuple(options.get("obis") or ()),
        read_command=options.get("read_command", "R1"),
        clock_drift_limit_s=options.get("clock_drift_limit_s"),
        utc_offset_min=options.get("utc_offset_min"))


def _register_cli(sub: Any, open_port: PortOpener) -> None:
    from drivers.iec62056.cli import register

    register(sub, open_port)


def _simulate(state_dir: Any, poll_interval_s: int) -> Any:
    from drivers.iec62056.site import simulate_optical

    return simulate_optical(state_dir, poll_interval_s)


PLUGIN = ProtocolPlugin(
    name="iec62056",
    kind="polled",
    bus_fields={"echo": opt(bool, False)},  # the probe echoes what it sends (half duplex)
    meter_fields={
        "address": opt(str, ""),
        "mode": opt(str, "C", one_of("A", "B", "C")),
        "max_baud": opt(int, 9600, one_of(*MAX_BAUDS)),
        "password": opt(str, ""),
        "obis": opt(list, []),
        "clock_drift_limit_s": opt(int, 30, positive),
        "read_command": opt(str, "R1", one_of("R1", "R5")),
        "utc_offset_min": opt(int, None, in_range(-720, 840)),
    },
    counters=CounterSpec(
        ok="reads_ok",
        timeouts=frozenset({"timeouts", "port_errors"}),
        checksum=frozenset({"checksum_errors"}),
        not_errors=frozenset({"baud_fallbacks"}),
    ),
    open_polled=Iec62056MeterBus,
    cli=_register_cli,
    simulate=_simulate,
)
