"""The wireless M-Bus protocol plugin (pushed): the dongle keys of a bus, its AES key file, the
receiver, the scan for meters heard nearby and the uplink's key commands."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from core.errors import Refused
from core.schema import Problems, in_range, one_of, opt, req
from drivers.errors import DriverError
from drivers.plugin import (
    Accept,
    BusView,
    CommandHandler,
    Context,
    CounterSpec,
    Found,
    MeterView,
    PortOpener,
    ProtocolPlugin,
    ScanCapability,
    SerialParams,
)

DEFAULT_KEY_FILE = "wmbus-keys.json"  # beside the database unless `key_file` says otherwise
DONGLES = ("im871a", "amb8465", "lines")


class WmbusSource:
    """A dongle: decoded telegrams of the configured meters become readings."""

    def __init__(self, bus: BusView, meters: Sequence[MeterView], context: Context) -> None:
        from drivers.wmbus.keys import KeyStore
        from drivers.wmbus.receiver import DONGLE_BAUD, WmbusReceiver
        from drivers.wmbus.receiver import MeterConfig as RadioMeter

        dongle = bus.options["dongle"]
        self.bus_id = bus.id
        self.clock = context.clock
        self._port = bus.port
        self._events = context.events
        self._by_radio_id = {str(m.address).upper(): m.id for m in meters}
        radio = {str(m.address).upper(): RadioMeter(m.options.get("manufacturer") or None,
                                                    m.options.get("device_type"))
                 for m in meters}
        params = SerialParams(bus.port, DONGLE_BAUD[dongle])
        # the receiver looks keys up live: a key added by command applies at once
        self.keys = KeyStore(bus.options.get("key_file") or context.data_dir / DEFAULT_KEY_FILE)
        self.radio_ids = {m.id: str(m.address).upper() for m in meters}
        self.receiver = WmbusReceiver(lambda: context.open_serial(params), dongle,
                                      bus.options.get("link_mode") or "T1", self.keys, radio,
                                      clock=lambda: context.clock.wall_ms() / 1000)

    async def run(self, accept: Accept) -> None:
        relay = asyncio.create_task(self._relay_events())
        receive = asyncio.create_task(self._receive(accept))
        try:
            done, _ = await asyncio.wait({relay, receive}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # either one failing fails the source: the supervisor restarts it
        finally:
            relay.cancel()
            receive.cancel()
            await asyncio.gather(relay, receive, return_exceptions=True)
            await self.receiver.close()

    async def _receive(self, accept: Accept) -> None:
        # a dongle missing at start (USB enumerating after the service) is waited for
        async for telegram in self.receiver.telegrams(wait_for_port=True):
            meter_id = self._by_radio_id.get(telegram.meter.upper())
            if meter_id is not None:
                accept(meter_id, list(telegram.samples), telegram.ts_ms)

    async def _relay_events(self) -> None:
        while True:
            event = await self.receiver.events.get()
            if event.kind == "port_unavailable":  # the name any bus uses for a missing port
                self._events("port_unavailable", None, {"bus": self.bus_id, "port": self._port,
                                                        "detail": event.detail}, "warning")
                continue
            meter_id = self._by_radio_id.get((event.meter or "").upper(), event.meter)
            self._events(f"wmbus_{event.kind}", meter_id, {"detail": event.detail}, "warning")


def _check(bus: BusView, where: str, meters: Sequence[tuple[str, MeterView]],
           problems: Problems) -> None:
    if bus.options.get("dongle"):
        return
    for meter_where, _meter in meters:
        problems.add(f"{meter_where}.bus", f"wmbus meters need a bus with a `dongle` "
                                           f"(bus {bus.id!r} has none)")


def _check_key_file(bus: BusView, where: str, problems: Problems) -> None:
    """A key file may be absent (`gateway wmbus keys add` creates it), never unusable."""
    from drivers.wmbus.keys import KeyStore

    path = bus.options.get("key_file") or ""
    if not bus.options.get("dongle") or not path or not Path(path).exists():
        return
    try:
        KeyStore(path)
    except (DriverError, OSError, UnicodeDecodeError) as exc:
        problems.add(f"{where}.key_file", f"wireless M-Bus key file: {exc}")


def _resolve_paths(options: dict[str, Any], resolve: Callable[[str], Path],
                   data_dir: Path) -> dict[str, Any]:
    key_file = options.get("key_file") or ""
    if key_file:
        return {**options, "key_file": str(resolve(key_file))}
    if options.get("dongle"):
        return {**options, "key_file": str(data_dir / DEFAULT_KEY_FILE)}
    return options


def _counters(source: Any, meter_id: str | None) -> Mapping[str, int]:
    receiver = source.receiver
    if meter_id is None:
        return receiver.counters()
    radio_id = source.radio_ids.get(meter_id)
    return receiver.meter_counters(radio_id) if radio_id is not None else {}


async def _scan(source: Any, meters: Sequence[MeterView], seconds: float) -> list[Found]:
    """Listen for `seconds`; every sender heard that is not configured."""
    await source.clock.sleep(seconds)
    return [Found(h.meter, f"{h.manufacturer} type {h.device_type}, heard {h.count} x, "
                           f"{h.last_rssi_dbm} dBm")
            for h in source.receiver.unknown_meters()]


def _keys(source: Any) -> list[tuple[str, str | None]]:
    meter_of = {radio: meter for meter, radio in source.radio_ids.items()}
    return [(key_id, meter_of.get(key_id)) for key_id in source.keys.ids()]


def _key_command(remove: bool) -> Callable[[Callable[[], Sequence[Any]]], CommandHandler]:
    """Set or remove a meter's AES key (`wmbus.key.set|remove`); the result never carries it."""
    def factory(sources: Callable[[], Sequence[Any]]) -> CommandHandler:
        async def key_command(args: dict[str, Any], ctx: Any) -> dict[str, Any]:
            from drivers.wmbus.keys import MeterKeyFileError

            meter_id = args.get("meter")
            if not isinstance(meter_id, str):  # a list is unhashable: refuse before the lookup
                raise Refused("bad_args", "`meter` must be a meter id (text)")
            source = next((s for s in sources() if meter_id in s.radio_ids), None)
            if source is None:
                raise Refused("unknown_meter",
                              f"{meter_id!r} is not a configured wireless M-Bus meter")
            radio_id = source.radio_ids[meter_id]
            try:
                if remove:
                    return {"meter": meter_id, "removed": source.keys.remove(radio_id)}
                key_hex = args.get("key")
                if not isinstance(key_hex, str):
                    raise Refused("bad_key", "give the 16-byte AES key as 32 hex digits")
                source.keys.add(radio_id, key_hex)
            except (MeterKeyFileError, ValueError) as exc:
                raise Refused("bad_key", str(exc)) from None
            return {"meter": meter_id, "key_set": True}
        return key_command
    return factory


def _register_cli(sub: Any, open_port: PortOpener) -> None:
    from drivers.wmbus.cli import register

    register(sub, open_port)


def _simulate(state_dir: Any, poll_interval_s: int) -> Any:
    from drivers.wmbus.site import simulate

    return simulate(state_dir, poll_interval_s)


PLUGIN = ProtocolPlugin(
    name="wmbus",
    kind="pushed",
    bus_fields={
        "dongle": opt(str, "", one_of("", *DONGLES)),
        "link_mode": opt(str, "", one_of("", "T1", "C1", "C1+T1", "S1")),
        "key_file": opt(str, ""),
    },
    meter_fields={
        "address": req(str),
        "manufacturer": opt(str, ""),
        "device_type": opt(int, None, in_range(0, 255)),
    },
    counters=CounterSpec(
        ok="telegrams",
        checksum=frozenset({"bad_frames", "decode_errors"}),
        not_errors=frozenset({"frames", "duplicates", "unknown", "reconnects"}),
    ),
    check=_check,
    check_files=_check_key_file,
    resolve_paths=_resolve_paths,
    open_pushed=WmbusSource,
    pushed_counters=_counters,
    scan=ScanCapability(_scan, "listens for telegrams (most meters send every 8-16 s) and"
                        " lists the senders heard that are not in the config."),
    silent_hint="check the antenna, the dongle and the meter key",
    keys=_keys,
    server_commands={"wmbus.key.set": _key_command(remove=False),
                     "wmbus.key.remove": _key_command(remove=True)},
    cli=_register_cli,
    simulate=_simulate,
)
