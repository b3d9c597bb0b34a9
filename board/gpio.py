"""Raspberry Pi / CM4 board backend: relays, inputs and LEDs through libgpiod v2 (PyPI `gpiod`).

The `gpiod` package is imported only when a `GpioBoard` is built without an explicit API, so the
rest of the gateway (and its tests) runs on machines without it. Logical names from the config
("relay-shop-12") are bound to profile channels ("relay1"); the profile says chip, line and
polarity. At start-up a relay whose state is unknown is requested "as is" and its current level
read back before it becomes an output, so a restart never glitches a tenant's supply.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from board import serial_ports
from board.interface import (
    Board,
    BoardError,
    InputChange,
    InputSpec,
    OutputSpec,
    SafeState,
    SerialSpec,
)
from board.persist import OutputStateFile
from board.profile import BoardProfile, LinePin, SysfsLed
from board.watchdog import HardwareWatchdog, SystemdNotifier

LOGGER = logging.getLogger(__name__)

MODEM_POWER = "modem-power"  # logical name of the profile's modem supply line
CONSUMER = "meter-gateway"  # shown by `gpioinfo` so a technician sees who holds the line
USB_MOUNT_PREFIX = "/media/gateway-usb-"  # where 61-gateway-usb-storage.rules mounts sticks
MOUNTS_FILE = Path("/proc/self/mounts")
PERSISTED_KINDS = ("relay", "alarm")  # LEDs blink: persisting them would wear the SD card


@dataclass(frozen=True, slots=True)
class GpiodApi:
    """The few names of the gpiod v2 API this backend uses (real module or a test double)."""

    request_lines: Callable[..., Any]
    LineSettings: Callable[..., Any]
    Direction: Any
    Value: Any
    Edge: Any
    Bias: Any


def load_gpiod() -> GpiodApi:
    """Import the libgpiod v2 Python bindings; BoardError when they are missing or too old."""
    try:
        gpiod = importlib.import_module("gpiod")
        line = importlib.import_module("gpiod.line")
    except ImportError as exc:
        raise BoardError(
            "python package 'gpiod' (libgpiod v2 bindings) is not installed: "
            "pip install 'meter-gateway[pi]'"
        ) from exc
    if not hasattr(gpiod, "request_lines"):
        raise BoardError("python package 'gpiod' is the v1 API; the gateway needs gpiod>=2.2")
    return GpiodApi(
        request_lines=gpiod.request_lines,
        LineSettings=gpiod.LineSettings,
        Direction=line.Direction,
        Value=line.Value,
        Edge=line.Edge,
        Bias=line.Bias,
    )


@dataclass(slots=True)
class _Line:
    name: str
    pin: LinePin
    is_output: bool
    active_low: bool
    debounce_ms: int = 0
    safe_state: SafeState = SafeState.HOLD
    persisted: bool = False
    initial: bool | None = None


class GpioBoard(Board):
    """The real board: GPIO lines by chip and offset, systemd/hardware watchdog, serial ports."""

    def __init__(
        self,
        profile: BoardProfile,
        bindings: Mapping[str, str],
        *,
        state_path: Path,
        gpiod: GpiodApi | None = None,
        notifier: SystemdNotifier | None = None,
        hardware_watchdog: HardwareWatchdog | None = None,
        by_id_dir: Path = serial_ports.BY_ID_DIR,
    ) -> None:
        self.profile = profile
        self._bindings = dict(bindings)
        self._gpiod = gpiod or load_gpiod()
        self._states = OutputStateFile(state_path)
        self._notifier = notifier or SystemdNotifier.from_environment()
        self._hw_watchdog = hardware_watchdog
        self._by_id_dir = by_id_dir
        self._lines: dict[str, _Line] = {}
        self._leds: dict[str, SysfsLed] = {}
        self._requests: dict[str, Any] = {}  # chip path -> line request
        self._by_offset: dict[tuple[str, int], str] = {}
        self._last_input: dict[str, bool] = {}
        self._commanded: dict[str, bool] = {}

    # -- declaration -------------------------------------------------------------------------

    def declare(self, outputs: list[OutputSpec], inputs: list[InputSpec]) -> None:
        if self._requests:
            raise BoardError("board already declared; declare() is called once at start-up")
        for out in outputs:
            self._declare_output(out)
        for inp in inputs:
            pin = self._pin_for(inp.name, self.profile.inputs, "input")
            self._add_line(_Line(inp.name, pin, False, pin.active_low != inp.active_low,
                                 debounce_ms=inp.debounce_ms))
        if self.profile.modem_power is not None:
            # Powered at start; HOLD so a gateway restart never drops the uplink.
            self._add_line(_Line(MODEM_POWER, self.profile.modem_power.pin, True,
                                 self.profile.modem_power.pin.active_low, initial=True))
        for chip in sorted({line.pin.chip for line in self._lines.values()}):
            self._request_chip(chip)
        for name, led in self._leds.items():
            _write_sysfs(Path(led.path) / "trigger", "none", name)

    def _declare_output(self, out: OutputSpec) -> None:
        if out.kind == "led" and out.name not in self._bindings:
            led = self.profile.leds.get(out.name)
            if led is None:
                raise BoardError(f"LED {out.name!r}: profile {self.profile.name} has no such LED "
                                 f"(has {sorted(self.profile.leds)})")
            if isinstance(led, SysfsLed):
                self._leds[out.name] = led
                return
            pin = led
        else:
            pin = self._pin_for(out.name, self.profile.outputs, "output")
        persisted = out.kind in PERSISTED_KINDS
        initial = out.initial
        if initial is None and persisted:
            initial = self._states.get(out.name)
        self._add_line(_Line(out.name, pin, True, pin.active_low, safe_state=out.safe_state,
                             persisted=persisted, initial=initial))

    def _pin_for(self, name: str, channels: Mapping[str, LinePin], what: str) -> LinePin:
        channel = self._bindings.get(name, name)
        pin = channels.get(channel)
        if pin is None:
            raise BoardError(f"{what} {name!r}: channel {channel!r} is not in board profile "
                             f"{self.profile.name} (has {sorted(channels)})")
        return pin

    def _add_line(self, line: _Line) -> None:
        key = (line.pin.chip, line.pin.line)
        if line.name in self._lines or key in self._by_offset:
            other = self._by_offset.get(key, line.name)
            raise BoardError(f"{line.name!r}: {key[0]} line {key[1]} already used by {other!r}")
        self._lines[line.name] = line
        self._by_offset[key] = line.name

    def _request_chip(self, chip: str) -> None:
        lines = [ln for ln in self._lines.values() if ln.pin.chip == chip]
        unknown = [ln for ln in lines if ln.is_output and ln.initial is None]
        try:
            request = self._gpiod.request_lines(
                chip, consumer=CONSUMER, config={ln.pin.line: self._settings(ln) for ln in lines}
            )
            self._requests[chip] = request
            for ln in unknown:
                # Keep whatever level the line has now (relay held across a restart).
                ln.initial = request.get_value(ln.pin.line) == self._gpiod.Value.ACTIVE
            if unknown:
                request.reconfigure_lines({ln.pin.line: self._settings(ln) for ln in lines})
            for ln in lines:
                if ln.is_output:
                    self._commanded[ln.name] = bool(ln.initial)
                else:
                    self._last_input[ln.name] = self._read(ln)
        except OSError as exc:
            raise BoardError(f"cannot request GPIO lines on {chip}: {exc.strerror or exc} "
                             "(is another program holding them? see `gpioinfo`)") from exc
        LOGGER.info("gpio_lines_requested", extra={"chip": chip, "lines": [ln.name for ln in lines],
                                                   "kept_state": [ln.name for ln in unknown]})

    def _settings(self, ln: _Line) -> Any:
        api = self._gpiod
        bias = getattr(api.Bias, ln.pin.bias.upper())
        if not ln.is_output:
            return api.LineSettings(direction=api.Direction.INPUT, edge_detection=api.Edge.BOTH,
                                    bias=bias, active_low=ln.active_low,
                                    debounce_period=timedelta(milliseconds=ln.debounce_ms))
        if ln.initial is None:
            return api.LineSettings(direction=api.Direction.AS_IS, active_low=ln.active_low)
        value = api.Value.ACTIVE if ln.initial else api.Value.INACTIVE
        return api.LineSettings(direction=api.Direction.OUTPUT, active_low=ln.active_low,
                                bias=bias, output_value=value)

    # -- outputs and inputs ------------------------------------------------------------------

    def set_output(self, name: str, on: bool) -> None:
        if name in self._leds:
            _write_sysfs(Path(self._leds[name].path) / "brightness", "1" if on else "0", name)
            self._commanded[name] = on
            return
        ln = self._output(name)
        value = self._gpiod.Value.ACTIVE if on else self._gpiod.Value.INACTIVE
        try:
            self._requests[ln.pin.chip].set_value(ln.pin.line, value)
        except OSError as exc:
            raise BoardError(f"output {name!r}: cannot drive {ln.pin.chip} line {ln.pin.line}: "
                             f"{exc.strerror or exc}") from exc
        self._commanded[name] = on
        if ln.persisted:
            self._states.set(name, on)

    def output_state(self, name: str) -> bool | None:
        if name not in self._lines and name not in self._leds:
            raise BoardError(f"output {name!r} was not declared")
        return self._commanded.get(name)

    def read_input(self, name: str) -> bool:
        ln = self._lines.get(name)
        if ln is None or ln.is_output:
            raise BoardError(f"input {name!r} was not declared")
        return self._read(ln)

    def _output(self, name: str) -> _Line:
        ln = self._lines.get(name)
        if ln is None or not ln.is_output:
            raise BoardError(f"output {name!r} was not declared")
        return ln

    def _read(self, ln: _Line) -> bool:
        try:
            value = self._requests[ln.pin.chip].get_value(ln.pin.line)
        except OSError as exc:
            raise BoardError(f"{ln.name!r}: cannot read {ln.pin.chip} line {ln.pin.line}: "
                             f"{exc.strerror or exc}") from exc
        return bool(value == self._gpiod.Value.ACTIVE)

    async def input_changes(self) -> AsyncIterator[InputChange]:
        """Debounced input changes (the kernel debounces; repeats of one level are dropped)."""
        queue: asyncio.Queue[InputChange] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        fds = []
        for chip, request in self._requests.items():
            fd = request.fd
            loop.add_reader(fd, self._drain_events, chip, request, queue)
            fds.append(fd)
        try:
            while True:
                yield await queue.get()
        finally:
            for fd in fds:
                loop.remove_reader(fd)

    def _drain_events(self, chip: str, request: Any, queue: asyncio.Queue[InputChange]) -> None:
        for event in request.read_edge_events():
            name = self._by_offset.get((chip, event.line_offset))
            if name is None:
                continue
            active = self._read(self._lines[name])
            if self._last_input.get(name) is active:
                continue
            self._last_input[name] = active
            ts_ms = time.time_ns() // 1_000_000
            queue.put_nowait(InputChange(name=name, active=active, ts_ms=ts_ms))

    async def power_cycle_modem(self) -> None:
        """Cut the modem's supply for the profile's off_s, then restore it."""
        power = self.profile.modem_power
        if power is None or MODEM_POWER not in self._lines:
            raise BoardError(f"board profile {self.profile.name} has no modem power line")
        LOGGER.warning("modem_power_cycle", extra={"off_s": power.off_s})
        self.set_output(MODEM_POWER, False)
        try:
            await asyncio.sleep(power.off_s)
        finally:
            self.set_output(MODEM_POWER, True)

    # -- watchdog, serial, shutdown ----------------------------------------------------------

    def kick_watchdog(self) -> None:
        self._notifier.watchdog()
        if self._hw_watchdog is not None:
            self._hw_watchdog.kick()

    def resolve_serial_port(self, port: str) -> str:
        return serial_ports.resolve_serial_port(port, by_id_dir=self._by_id_dir)

    def open_serial(self, spec: SerialSpec, timeout_s: float | None = None) -> Any:
        resolved = SerialSpec(self.resolve_serial_port(spec.port), spec.baudrate, spec.bytesize,
                              spec.parity, spec.stopbits, spec.rs485)
        return serial_ports.open_serial(resolved, timeout_s)

    def mount_points(self) -> list[str]:
        """USB sticks mounted by the gateway's udev rule (see board/system)."""
        return usb_mount_points(MOUNTS_FILE.read_text())

    def close(self) -> None:
        """Outputs take their declared safe state, then lines are released.

        HOLD lines are left as driven: on the BCM283x/BCM2711 the pin keeps its level and
        direction after release, so a held relay stays put through a service restart.
        """
        for ln in self._lines.values():
            if ln.is_output and ln.safe_state is not SafeState.HOLD:
                try:
                    self.set_output(ln.name, ln.safe_state is SafeState.CLOSED)
                except BoardError as exc:
                    LOGGER.error("safe_state_failed", extra={"output": ln.name, "error": str(exc)})
        for request in self._requests.values():
            request.release()
        self._requests.clear()
        self._notifier.stopping()
        if self._hw_watchdog is not None:
            self._hw_watchdog.close()


def usb_mount_points(mounts_text: str) -> list[str]:
    """Mount points under USB_MOUNT_PREFIX in /proc/mounts text (octal escapes decoded)."""
    points = []
    for line in mounts_text.splitlines():
        cols = line.split()
        if len(cols) >= 3 and cols[2] != "autofs":  # the automount stub is not yet a stick
            point = cols[1].encode().decode("unicode_escape")
            if point.startswith(USB_MOUNT_PREFIX):
                points.append(point)
    return sorted(set(points))


def _write_sysfs(path: Path, value: str, name: str) -> None:
    try:
        path.write_text(value, encoding="ascii")
    except OSError as exc:
        raise BoardError(f"LED {name!r}: cannot write {path}: {exc.strerror or exc}") from exc
