"""How IEC 62056-21 and DSMR P1 get their line: the port `board/` opened becomes a serial
stream of the transport kit (drivers/transport/serial.py), traced as protocol "iec62056"."""

from __future__ import annotations

from typing import Any, Final

from drivers.errors import PortUnavailable
from drivers.transport.serial import SerialStream, take_descriptor
from drivers.transport.stream import ByteStream, EndFinder, LineSettings, line_time_s

PROTOCOL: Final[str] = "iec62056"  # the wire logger: drivers.iec62056.wire
# IEC 62056-21 talks 7E1; a P1 port's settings come from the port board/ opened (8N1 115200).
IEC_SETTINGS: Final[LineSettings] = LineSettings(300, 7, "E", 1)

__all__ = ["IEC_SETTINGS", "PROTOCOL", "EndFinder", "line_time_s", "open_line"]


def _settings_of(port: Any, default: LineSettings) -> LineSettings:
    """The line settings a port object was opened with (pyserial names), else `default`."""
    try:
        return LineSettings(int(port.baudrate), int(port.bytesize), str(port.parity),
                            int(port.stopbits))
    except (AttributeError, TypeError, ValueError):
        return default


def open_line(opened: Any, name: str, default: LineSettings = IEC_SETTINGS, *,
              protocol: str = PROTOCOL) -> ByteStream:
    """A stream over what board/ opened (a descriptor, or a port object taken over), or the
    stream itself when given one (the in-memory stream of the tests); DSMR P1 ports trace as
    protocol "dsmr"."""
    if isinstance(opened, ByteStream):
        return opened
    settings = default if isinstance(opened, int) else _settings_of(opened, default)
    try:
        fd = take_descriptor(opened)
    except OSError as exc:
        raise PortUnavailable(f"{name}: cannot take the port over: {exc}") from exc
    return SerialStream(fd, settings, name=name, protocol=protocol)
