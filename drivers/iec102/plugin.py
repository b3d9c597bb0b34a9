"""The IEC 60870-5-102 protocol plugin (REE billing meters, polled, serial or TCP): keys, open,
counters, CLI."""

from __future__ import annotations

from typing import Any

from core.schema import in_range, one_of, opt, positive, req, time_zone
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

CONNECT_TIMEOUT_S = 10.0   # a serial server or modem on the far side of TCP


class Iec102MeterBus:
    """Meters of one line (RS-232/485 from the board, or a TCP serial server) read in turn."""

    def __init__(self, bus: BusView, context: Context) -> None:
        from drivers.iec102.reader import Iec102Reader
        from drivers.transport.serial import RtsDirection, SerialStream, take_descriptor
        from drivers.transport.stream import ByteStream, LineSettings
        from drivers.transport.tcp import TcpStream

        async def open_stream() -> ByteStream:
            if bus.kind == "tcp":
                return await TcpStream.connect(bus.host, bus.tcp_port, protocol="iec102",
                                               timeout_s=CONNECT_TIMEOUT_S)
            params = SerialParams(bus.port, bus.baudrate, bus.bytesize, bus.parity,
                                  bus.stopbits, dict(bus.rs485))
            fd = take_descriptor(context.open_serial(params))
            settings = LineSettings(bus.baudrate, bus.bytesize, bus.parity, bus.stopbits)
            return SerialStream(fd, settings, name=bus.port, protocol="iec102",
                                rts=RtsDirection.from_rs485(bus.rs485))

        self.driver = Iec102Reader(open_stream, name=bus.id, wall_ms=context.clock.wall_ms,
                                   events=context.events,
                                   records_until=context.records_until,
                                   clock_synced=context.clock_synced)

    async def read(self, meter: MeterView) -> list[Sample]:
        return await self.driver.read(meter.id, meter_options(meter), meter.timeout_ms / 1000)

    def counters(self, meter_id: str) -> dict[str, int]:
        return self.driver.counters(meter_id)

    async def close(self) -> None:
        return None   # each read closes its own line


def meter_options(meter: MeterView) -> Any:
    from drivers.iec102.reader import MeterOptions

    options = meter.options
    return MeterOptions(link_address=int(meter.address),
                        measuring_point=options.get("measuring_point", 1),
                        password=options["password"], contract=options.get("contract", 1),
                        record=options.get("profile_record", 11),
                        zone=options.get("timezone", "Europe/Madrid"),
                        event_records=tuple(options.get("event_records") or ()),
                        clock_drift_limit_s=options.get("clock_drift_limit_s", 30),
                        clock_max_step_s=options.get("clock_max_step_s", 300),
                        profile_backfill_h=options.get("profile_backfill_h", 48),
                        profile_most_h=options.get("profile_most_h", 168),
                        billing_backfill_days=options.get("billing_backfill_days", 400))


def _event_records(value: Any) -> str | None:
    if all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value):
        return None
    return "must be a list of record addresses 0..255 (52 supply, 53 synchronisation, ...)"


def _register_cli(sub: Any, open_port: PortOpener) -> None:
    from drivers.iec102.cli import register

    register(sub, open_port)


PLUGIN = ProtocolPlugin(
    name="iec102",
    kind="polled",
    transports=frozenset({"serial", "tcp"}),
    meter_fields={
        "address": req(int, in_range(0, 0xFFFF)),           # the link address
        "measuring_point": opt(int, 1, in_range(0, 0xFFFF)),  # ASDU common (meter) address
        "password": req(int, in_range(0, 0xFFFFFFFF)),
        "contract": opt(int, 1, one_of(1, 2, 3)),
        "profile_record": opt(int, 11, one_of(11, 12)),     # hourly or quarter-hourly
        "timezone": opt(str, "Europe/Madrid", time_zone),
        "event_records": opt(list, [], _event_records),    # e.g. [52, 53]: handed on as events
        "clock_drift_limit_s": opt(int, 30, positive),
        "clock_max_step_s": opt(int, 300, in_range(1, 3600)),  # larger: for a technician
        "profile_backfill_h": opt(int, 48, in_range(1, 24 * 400)),  # no profile stored yet
        "profile_most_h": opt(int, 168, in_range(1, 24 * 31)),   # per poll when catching up
        "billing_backfill_days": opt(int, 400, in_range(1, 3650)),
    },
    counters=CounterSpec(
        ok="reads_ok",
        timeouts=frozenset({"timeouts", "port_errors"}),
        checksum=frozenset({"checksum_errors"}),
        # the link's own counts: answers, and the retries that hid a lost or garbled one
        not_errors=frozenset({"link_frames_ok", "link_timeouts", "link_checksum_errors",
                              "link_frame_errors"}),
    ),
    open_polled=Iec102MeterBus,
    cli=_register_cli,
    silent_hint="check the link address, the measuring point, the password and the line",
)
