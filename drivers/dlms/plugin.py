"""The DLMS/COSEM protocol plugin (polled): HDLC over a serial line, the wrapper over TCP;
its meter keys (addresses, authentication, key id, profile or OBIS list), the key file and
the invocation counter file beside the data, counters, keys, and the `gateway dlms` CLI."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from core.schema import Problems, in_range, one_of, opt
from drivers.errors import DriverError
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

DEFAULT_KEY_FILE: Final = "dlms-keys"
DEFAULT_COUNTER_FILE: Final = "dlms-counters.json"
AUTHENTICATIONS: Final = ("none", "lls", "hls_gmac")
_HEX16: Final = re.compile(r"^[0-9A-Fa-f]{16}$")


def _system_title(value: Any) -> str | None:
    return None if value == "" or _HEX16.match(str(value)) else "16 hex digits (8 bytes)"


def _obis_list(value: Any) -> str | None:
    from drivers.dlms.cosem import obis_bytes

    try:
        for code in value:
            obis_bytes(str(code))
    except ValueError as error:
        return str(error)
    return None


def _one_obis(value: Any) -> str | None:
    return None if value == "" else _obis_list([value])


def _zone(value: Any) -> str | None:
    from drivers.dlms.records import check_zone

    return check_zone(value)


class DlmsMeterBus:
    """Adapter from a configured bus to drivers.dlms.reader.DlmsBus."""

    def __init__(self, bus: BusView, context: Context) -> None:
        from drivers.dlms.counters import shared_counter_file
        from drivers.dlms.keys import DlmsKeyFile
        from drivers.dlms.link import LinkParameters
        from drivers.dlms.reader import DlmsBus

        options = bus.options
        self.keys = DlmsKeyFile(options.get("dlms_key_file")
                                or context.data_dir / DEFAULT_KEY_FILE)
        counters = shared_counter_file(options.get("dlms_counter_file")
                                       or context.data_dir / DEFAULT_COUNTER_FILE)
        size, window = options.get("hdlc_max_info", 128), options.get("hdlc_window", 1)
        proposed = LinkParameters(size, size, window, window)
        from drivers.dlms.records import RecordReader

        self.meter_keys: dict[str, str] = {}
        self._context = context
        self.records = RecordReader(context.records_until, context.clock.wall_ms)
        self.known_meters: dict[str, MeterView] = {}  # read at least once: commands find them
        if bus.kind == "tcp":
            self.driver = DlmsBus(counters, open_tcp=_tcp_opener(bus), proposed=proposed)
        else:
            from drivers.dlms.mode_e import sign_on

            self.driver = DlmsBus(counters, open_line=_line_opener(bus, context),
                                  proposed=proposed,
                                  sign_on=sign_on if options.get("mode_e") else None)

    async def read(self, meter: MeterView) -> list[Sample]:
        """The registers and clock, and the meter's records (load profile, billing) whose
        turn it is, from where the gateway's own end (drivers/dlms/records.py)."""
        from drivers.dlms.records import record_series, zone_of

        self.known_meters[meter.id] = meter
        settings = self.settings(meter)
        due = self.records.due(meter.id, record_series(settings.profile, meter.options))
        zone = zone_of(meter.options.get("meter_timezone", "UTC"))

        async def records(association: Any) -> list[Sample]:
            return await self.records.read(association, meter.id, due, zone)

        got = await self.driver.read_meter(settings, records if due else None)
        self._check_clock(meter, got)
        return got

    def _check_clock(self, meter: MeterView, got: list[Sample]) -> None:
        """An event when the meter's clock (with its deviation: an absolute time) is more
        than `clock_drift_limit_s` off the gateway's synced clock."""
        from datetime import datetime

        limit = meter.options.get("clock_drift_limit_s", 30)
        text = next((str(s.value) for s in got if s.quantity == "meter_datetime"), "")
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            return  # no clock read, or one without a deviation: no absolute time to compare
        if when.tzinfo is None:
            return
        drift_s = round(when.timestamp() - self._context.clock.wall_ms() / 1000)
        if abs(drift_s) > limit:
            self._context.events("meter_clock_drift", meter.id, {"drift_s": drift_s},
                                 "warning")

    def settings(self, meter: MeterView) -> Any:
        from drivers.dlms.read_profiles import read_profile
        from drivers.dlms.reader import MeterSettings, meter_credentials

        opts = meter.options
        key_id = opts.get("key_id") or meter.id
        self.meter_keys[meter.id] = key_id
        return MeterSettings(meter.id, meter_credentials(opts, self.keys.secrets(key_id), key_id),
                             read_profile(meter.profile or "generic",
                                          tuple(opts.get("obis") or ())),
                             client=opts.get("client", 16), physical=int(meter.address),
                             logical_device=opts.get("logical_device", 1),
                             address_size=opts.get("address_size", 2),
                             timeout_s=meter.timeout_ms / 1000)

    def counters(self, meter_id: str) -> dict[str, int]:
        own = {name: n for (meter, name), n in self.records.counters.items() if meter == meter_id}
        return {**self.driver.counters(meter_id), **own}

    async def close(self) -> None:
        await self.driver.close()


def _line_opener(bus: BusView, context: Context) -> Callable[[], Any]:
    from drivers.transport.serial import SerialStream, take_descriptor
    from drivers.transport.stream import LineSettings

    params = SerialParams(bus.port, bus.baudrate, bus.bytesize, bus.parity, bus.stopbits,
                          dict(bus.rs485))
    line = LineSettings(bus.baudrate, bus.bytesize, bus.parity, bus.stopbits)

    def open_line() -> Any:
        fd = take_descriptor(context.open_serial(params))
        return SerialStream(fd, line, name=bus.port, protocol="dlms")
    return open_line


def _tcp_opener(bus: BusView) -> Callable[[float], Any]:
    from drivers.transport.tcp import TcpStream

    async def open_tcp(timeout_s: float) -> Any:
        return await TcpStream.connect(bus.host, bus.tcp_port, protocol="dlms",
                                       timeout_s=timeout_s)
    return open_tcp


def _check(bus: BusView, where: str, meters: Sequence[tuple[str, MeterView]],
           problems: Problems) -> None:
    from drivers.dlms.read_profiles import read_profiles

    known = read_profiles()
    if bus.options.get("mode_e") and bus.kind == "tcp":
        problems.add(f"{where}.mode_e", "mode E is an optical head's sign-on: a serial bus only")
    for meter_where, meter in meters:
        if (meter.profile or "generic") not in known:
            problems.add(f"{meter_where}.profile", f"unknown DLMS profile {meter.profile!r} "
                                                   f"(known: {', '.join(sorted(known))})")
        if meter.options.get("ciphered") and meter.options.get("authentication") == "none":
            problems.add(f"{meter_where}.ciphered", "ciphering needs an association with keys "
                                                    "(authentication = \"hls_gmac\")")


def _check_files(bus: BusView, where: str, problems: Problems) -> None:
    """The key file may be absent (meters without secrets), never unusable."""
    from drivers.dlms.counters import CounterFile
    from drivers.dlms.keys import DlmsKeyFile

    for key, opener in (("dlms_key_file", DlmsKeyFile), ("dlms_counter_file", CounterFile)):
        path = bus.options.get(key) or ""
        if path and Path(path).exists():
            try:
                opener(path)
            except (DriverError, OSError, UnicodeDecodeError) as exc:
                problems.add(f"{where}.{key}", str(exc))


def _resolve_paths(options: dict[str, Any], resolve: Callable[[str], Path],
                   data_dir: Path) -> dict[str, Any]:
    out = dict(options)
    for key, default in (("dlms_key_file", DEFAULT_KEY_FILE), ("dlms_counter_file",
                                                          DEFAULT_COUNTER_FILE)):
        value = options.get(key) or ""
        out[key] = str(resolve(value)) if value else str(data_dir / default)
    return out


def _keys(opened: Any) -> list[tuple[str, str | None]]:
    meter_of = {key_id: meter for meter, key_id in opened.meter_keys.items()}
    return [(key_id, meter_of.get(key_id)) for key_id in opened.keys.ids()]


def _breaker(connect: bool | None) -> Any:
    from drivers.dlms.commands import breaker_command

    return breaker_command(connect)


def _key(remove: bool) -> Any:
    from drivers.dlms.commands import key_command

    return key_command(remove)


def _breakers(lookup: Any, outputs: Any, feedback: Any, clock: Any) -> Any:
    from drivers.dlms.breakers import open_breakers

    return open_breakers(lookup, outputs, feedback, clock)


def _register_cli(sub: Any, open_port: PortOpener) -> None:
    from drivers.dlms.cli import register

    register(sub, open_port)


PLUGIN = ProtocolPlugin(
    name="dlms",
    kind="polled",
    transports=frozenset({"serial", "tcp"}),
    bus_fields={
        "dlms_key_file": opt(str, ""),
        "dlms_counter_file": opt(str, ""),
        "hdlc_max_info": opt(int, 128, in_range(32, 2030)),
        "hdlc_window": opt(int, 1, in_range(1, 7)),
        "mode_e": opt(bool, False),  # optical head: IEC 62056-21 sign-on, then HDLC
    },
    meter_fields={
        "address": opt(int, 17, in_range(0, 0x3FFF)),  # physical device (lower HDLC address)
        "client": opt(int, 16, in_range(1, 0x7F)),
        "logical_device": opt(int, 1, in_range(0, 0x3FFF)),
        "address_size": opt(int, 2, one_of(1, 2, 4)),
        "authentication": opt(str, "none", one_of(*AUTHENTICATIONS)),
        "ciphered": opt(bool, None),
        "key_id": opt(str, ""),
        "system_title": opt(str, "", _system_title),
        "profile": opt(str, "generic"),
        "obis": opt(list, [], _obis_list),
        "clock_drift_limit_s": opt(int, 30, in_range(1, 86400)),
        # the meter's own records (drivers/dlms/records.py): every N polls (0 never), the
        # objects when not the profile's, how far back a series never stored is read
        "load_profile_every": opt(int, 1, in_range(0, 10000)),
        "load_profile_obis": opt(str, "", _one_obis),
        "load_profile_backfill_h": opt(int, 24, in_range(1, 24 * 400)),
        "billing_every": opt(int, 1, in_range(0, 10000)),
        "billing_obis": opt(str, "", _one_obis),
        "billing_backfill_days": opt(int, 366, in_range(1, 4000)),
        "meter_timezone": opt(str, "UTC", _zone),
    },
    counters=CounterSpec(
        ok="reads_ok",
        timeouts=frozenset({"timeouts", "port_unavailable"}),
        checksum=frozenset({"checksum"}),
        not_errors=frozenset({"reads", "retries", "values", "records"}),
    ),
    check=_check,
    check_files=_check_files,
    resolve_paths=_resolve_paths,
    open_polled=DlmsMeterBus,
    silent_hint="check the wiring, the baud rate, the HDLC addresses (client, logical device, "
                "physical address) and the meter's keys",
    keys=_keys,
    server_commands={"dlms.disconnect": _breaker(False), "dlms.reconnect": _breaker(True),
                     "dlms.breaker": _breaker(None), "dlms.key.set": _key(False),
                     "dlms.key.remove": _key(True)},
    cli=_register_cli,
    breakers=_breakers,
)
