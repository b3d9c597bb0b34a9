"""The DSMR P1 protocol plugin ('dsmr' in the config): one pushing meter per port, plus the gas,
water and heat meters on its M-Bus channels, each stored under a meter id of its own."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from core.schema import Problems, identifier, in_range, opt
from drivers.errors import DriverError
from drivers.plugin import (
    Accept,
    BusView,
    Context,
    CounterSpec,
    MeterView,
    ProtocolPlugin,
    SerialParams,
    SubMeter,
)

LOGGER = logging.getLogger(__name__)

# A P1 port that failed (unplugged adapter) is reopened after this pause, growing to the cap.
REOPEN_MIN_S = 2.0
REOPEN_MAX_S = 60.0
CHANNELS = ("1", "2", "3", "4")


def sub_meter_ids(meter: MeterView) -> dict[int, str]:
    """The P1 meter's `mbus_meters`: M-Bus channel -> id of the gas / water / heat meter on it."""
    return {int(channel): sub_id
            for channel, sub_id in (meter.options.get("mbus_meters") or {}).items()
            if channel in CHANNELS and isinstance(sub_id, str)}  # the rest: config problems


def _sub_meters(meter: MeterView) -> list[SubMeter]:
    return [SubMeter(f"mbus_meters.{channel}", f"mbus-{channel}", sub_id)
            for channel, sub_id in sub_meter_ids(meter).items()]


def _mbus_channels(value: dict[str, Any]) -> str | None:
    """`{1 = "home-gas"}`: channels 1..4 of the P1 meter, each with a meter id of its own."""
    for channel, meter_id in value.items():
        if channel not in CHANNELS:
            return f"{channel!r} is not an M-Bus channel (1, 2, 3 or 4)"
        if not isinstance(meter_id, str) or identifier(meter_id) is not None:
            return f"channel {channel}: the meter id {meter_id!r} {identifier('')}"
    return None


def _check(bus: BusView, where: str, meters: Sequence[tuple[str, MeterView]],
           problems: Problems) -> None:
    """A P1 port carries one meter (its sub-meters are on its own M-Bus, not on the port)."""
    first = meters[0][1].id if meters else ""
    for meter_where, _meter in meters[1:]:
        problems.add(f"{meter_where}.bus", f"a P1 port carries one meter; bus {bus.id!r} "
                                           f"already has {first!r}")


class DsmrSource:
    """A P1 port: the meter pushes a telegram every 1-10 s."""

    def __init__(self, bus: BusView, meters: Sequence[MeterView], context: Context) -> None:
        meter = meters[0]
        self.bus_id = bus.id
        self._meter_id = meter.id
        self._sub_meters = sub_meter_ids(meter)  # M-Bus channel -> meter id
        self._utc_offset_min = int(meter.options.get("utc_offset_min", 60))
        self._params = SerialParams(bus.port, bus.baudrate, bytesize=bus.bytesize,
                                    parity=bus.parity, stopbits=bus.stopbits)
        self._context = context
        self.counts = {"telegrams": 0, "port_errors": 0}

    async def run(self, accept: Accept) -> None:
        pause = REOPEN_MIN_S
        while True:
            try:
                await self._read_port(accept)
                pause = REOPEN_MIN_S
            except DriverError as exc:
                self.counts["port_errors"] += 1
                LOGGER.warning("p1_port_failed", extra={"bus": self.bus_id,
                                                        "meter": self._meter_id,
                                                        "reason": str(exc), "retry_s": pause})
            await self._context.clock.sleep(pause)
            pause = min(pause * 2, REOPEN_MAX_S)

    async def _read_port(self, accept: Accept) -> None:
        from drivers.iec62056.p1 import telegrams

        port = self._context.open_serial(self._params)
        # telegrams() owns the port from here: its kit stream closes it however the loop ends
        async for telegram in telegrams(port, name=self.bus_id, meter=self._meter_id,
                                        utc_offset_min=self._utc_offset_min,
                                        channels=self._sub_meters):
            accept(self._meter_id, list(telegram.mapped.samples), self._context.clock.wall_ms())
            self.counts["telegrams"] += 1
            for sub in telegram.submeters:
                # at the capture time the sub-meter gave, not the telegram's arrival
                accept(self._sub_meters[sub.channel], list(sub.samples), sub.ts_ms)


def _counters(source: Any, meter_id: str | None) -> Mapping[str, int]:
    return dict(source.counts)  # one meter per port: its counts are the bus's


def _simulate(state_dir: Any, poll_interval_s: int) -> Any:
    from drivers.iec62056.site import simulate_p1

    return simulate_p1(state_dir, poll_interval_s)


PLUGIN = ProtocolPlugin(
    name="dsmr",
    kind="pushed",
    meter_fields={
        "address": opt(str, ""),
        # the meter clock's winter-time (W) offset from UTC; DSMR is Dutch: CET, S is one more hour
        "utc_offset_min": opt(int, 60, in_range(-720, 840)),
        # M-Bus channel n (0-n:24.2.1) -> the meter id its gas / water / heat readings are stored as
        "mbus_meters": opt(dict, {}, _mbus_channels),
    },
    counters=CounterSpec(ok="telegrams", timeouts=frozenset({"port_errors"})),
    check=_check,
    sub_meters=_sub_meters,
    open_pushed=DsmrSource,
    silent_hint="check the P1 cable: plugged into the meter's P1 port, its adapter in"
                " the gateway",
    pushed_counters=_counters,
    simulate=_simulate,
)
