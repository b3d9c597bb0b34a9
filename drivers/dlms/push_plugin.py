"""The DLMS push protocol plugin ('dlms_push' in the config, pushed): a customer port (the
Norwegian / Swedish HAN port behind an M-Bus level converter, an Austrian / Polish P1 port)
where the meters push data-notifications, HDLC or wired-M-Bus framed, plain or
general-glo-ciphered with the utility's key (drivers/dlms/listener.py does the work).

A meter is recognised by the system title its ciphered pushes carry (`system_title`), or is
"the one meter on this port" (no `system_title`). Its keys are read from the DLMS key file by
`key_id` (default: the meter id); the last invocation counter per system title is kept in the
invocation counter file, so a restart keeps refusing replayed and old pushes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from core.schema import Problems, one_of, opt
from drivers.dlms.plugin import DEFAULT_COUNTER_FILE, DEFAULT_KEY_FILE, _system_title
from drivers.errors import DriverError, PortUnavailable
from drivers.plugin import (
    Accept,
    BusView,
    Context,
    CounterSpec,
    MeterView,
    ProtocolPlugin,
    SerialParams,
)

LOGGER = logging.getLogger(__name__)
REOPEN_MIN_S: Final = 2.0  # a port that failed (unplugged converter) is reopened after this
REOPEN_MAX_S: Final = 60.0
FLUSH_EVERY_S: Final = 60.0  # the counter file is written at most this often (SD cards wear)
HAN_PROFILES: Final = ("generic", "kaifa", "kamstrup", "aidon")
COUNTER_KEY_PREFIX: Final = "push:"  # counter file entries by system title, beside meter ids


def _meters(meters: Sequence[MeterView], keys: Any) -> list[Any]:
    from drivers.dlms.listener import PushMeter

    out = []
    for meter in meters:
        title = str(meter.options.get("system_title") or "")
        profile = str(meter.options.get("profile") or meter.profile or "generic")
        key_id = str(meter.options.get("key_id") or meter.id)
        out.append(PushMeter(meter.id, bytes.fromhex(title) if title else None,
                             keys.secrets(key_id).keys(),
                             None if profile == "generic" else profile))
    return out


class DlmsPushSource:
    """A push port: reads it through the transport kit and hands each push to `accept`."""

    def __init__(self, bus: BusView, meters: Sequence[MeterView], context: Context) -> None:
        from drivers.dlms.counters import shared_counter_file
        from drivers.dlms.keys import DlmsKeyFile
        from drivers.dlms.listener import PushListener

        options = bus.options
        self.bus_id = bus.id
        self.keys = DlmsKeyFile(options.get("push_key_file") or context.data_dir
                                / DEFAULT_KEY_FILE)
        self._counters = shared_counter_file(options.get("push_counter_file")
                                             or context.data_dir / DEFAULT_COUNTER_FILE)
        self.meter_keys = {m.id: str(m.options.get("key_id") or m.id) for m in meters}
        self.listener = PushListener(_meters(meters, self.keys), self._guard,
                                     str(options.get("push_framing", "hdlc")), port=bus.port)
        self._params = SerialParams(bus.port, bus.baudrate, bytesize=bus.bytesize,
                                    parity=bus.parity, stopbits=bus.stopbits)
        self._context = context
        self._flushed_s = context.clock.monotonic()

    def _guard(self, title: bytes) -> Any:
        return self._counters.server_guard(COUNTER_KEY_PREFIX + title.hex().upper())

    async def run(self, accept: Accept) -> None:
        pause = REOPEN_MIN_S
        while True:
            try:
                await self._read_port(accept)
                pause = REOPEN_MIN_S
            except DriverError as exc:
                self.listener.counts.setdefault("", {}).setdefault("port_errors", 0)
                self.listener.counts[""]["port_errors"] += 1
                LOGGER.warning("dlms_push_port_failed", extra={"bus": self.bus_id,
                                                               "reason": str(exc),
                                                               "retry_s": pause})
            finally:
                self._counters.flush()
            await self._context.clock.sleep(pause)
            pause = min(pause * 2, REOPEN_MAX_S)

    async def _read_port(self, accept: Accept) -> None:
        from drivers.transport.serial import SerialStream, take_descriptor
        from drivers.transport.stream import LineSettings

        params = self._params
        line = LineSettings(params.baudrate, params.bytesize, params.parity, params.stopbits)
        stream = SerialStream(take_descriptor(self._context.open_serial(params)), line,
                              name=params.port, protocol="dlms")
        lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def on_data(chunk: bytes) -> None:
            for meter_id, got in self.listener.feed(chunk):
                accept(meter_id, got, self._context.clock.wall_ms())
            self._maybe_flush()

        def on_lost(reason: str) -> None:
            if not lost.done():
                lost.set_result(reason)

        try:
            stream.push_to(on_data, on_lost)
            LOGGER.info("dlms_push_listening", extra={"bus": self.bus_id, "port": params.port})
            reason = await lost
        finally:
            stream.close()
        raise PortUnavailable(f"{params.port}: {reason}")

    def _maybe_flush(self) -> None:
        now = self._context.clock.monotonic()
        if now - self._flushed_s >= FLUSH_EVERY_S:
            self._counters.flush()
            self._flushed_s = now


def _check(bus: BusView, where: str, meters: Sequence[tuple[str, MeterView]],
           problems: Problems) -> None:
    """One meter without a system title on a port, and then no other; titles unique."""
    untitled = [w for w, m in meters if not m.options.get("system_title")]
    if untitled and len(meters) > 1:
        for meter_where in untitled:
            problems.add(f"{meter_where}.system_title", "several meters on one push port: "
                                                        "each needs its system_title")
    seen: dict[str, str] = {}
    for meter_where, meter in meters:
        title = str(meter.options.get("system_title") or "").upper()
        if title and title in seen:
            problems.add(f"{meter_where}.system_title", f"{title} is {seen[title]!r}'s too")
        seen.setdefault(title, meter.id)


FILE_KEYS: Final = (("push_key_file", DEFAULT_KEY_FILE), ("push_counter_file",
                                                         DEFAULT_COUNTER_FILE))


def _check_files(bus: BusView, where: str, problems: Problems) -> None:
    """The key file may be absent (plain pushes), never unusable."""
    from drivers.dlms.counters import CounterFile
    from drivers.dlms.keys import DlmsKeyFile

    for (key, _default), opener in zip(FILE_KEYS, (DlmsKeyFile, CounterFile), strict=True):
        path = bus.options.get(key) or ""
        if path and Path(path).exists():
            try:
                opener(path)
            except (DriverError, OSError, UnicodeDecodeError) as exc:
                problems.add(f"{where}.{key}", str(exc))


def _resolve_paths(options: dict[str, Any], resolve: Callable[[str], Path],
                   data_dir: Path) -> dict[str, Any]:
    out = dict(options)
    for key, default in FILE_KEYS:
        value = options.get(key) or ""
        out[key] = str(resolve(value)) if value else str(data_dir / default)
    return out


def _counters(source: Any, meter_id: str | None) -> Mapping[str, int]:
    return source.listener.count(meter_id)


def _keys(opened: Any) -> list[tuple[str, str | None]]:
    meter_of = {key_id: meter for meter, key_id in opened.meter_keys.items()}
    return [(key_id, meter_of.get(key_id)) for key_id in opened.keys.ids()]


PLUGIN = ProtocolPlugin(
    name="dlms_push",
    kind="pushed",
    bus_fields={
        "push_framing": opt(str, "hdlc", one_of("hdlc", "mbus")),
        # default: the dlms plugin's files beside the database (one key file for both)
        "push_key_file": opt(str, ""),
        "push_counter_file": opt(str, ""),
    },
    meter_fields={
        "address": opt(str, ""),
        "system_title": opt(str, "", _system_title),  # "" : the one meter on this port
        "key_id": opt(str, ""),
        "profile": opt(str, "generic", one_of(*HAN_PROFILES)),
    },
    counters=CounterSpec(
        ok="pushes",
        timeouts=frozenset({"port_errors"}),
        checksum=frozenset({"checksum"}),
    ),
    check=_check,
    check_files=_check_files,
    resolve_paths=_resolve_paths,
    open_pushed=DlmsPushSource,
    pushed_counters=_counters,
    keys=_keys,
    silent_hint="check the HAN/P1 cable and level converter, the baud rate (2400 8N1 for "
                "Norwegian/Swedish HAN, 115200 for P1), the framing, and for ciphered pushes "
                "the meter's key and system title",
)
