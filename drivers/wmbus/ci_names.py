"""Names of the CI fields a meter-data decoder refuses (EN 13757-3/-7, OMS), for clear errors."""

from __future__ import annotations

from typing import Final

MANUFACTURER_CIS: Final = frozenset(range(0xA0, 0xB8))

_NAMES: Final[dict[int, str]] = {
    0x50: "application reset or select (to the meter)",
    0x51: "data to the meter",
    0x52: "selection of a device (to the meter)",
    0x53: "application reset or select, long header (to the meter)",
    0x5A: "command to the meter, short header",
    0x5B: "command to the meter, long header",
    0x5C: "synchronise action",
    0x60: "DLMS/COSEM to the meter, long header",
    0x61: "DLMS/COSEM to the meter, short header",
    0x64: "reserved for OBIS-based data to the meter, long header",
    0x65: "reserved for OBIS-based data to the meter, short header",
    0x69: "format frame, no header",
    0x6A: "format frame, short header",
    0x6B: "format frame, long header",
    0x6C: "clock synchronisation (absolute)",
    0x6D: "clock synchronisation (relative)",
    0x6E: "application error, short header",
    0x6F: "application error, long header",
    0x70: "application error, no header",
    0x71: "alarm, no header",
    0x74: "alarm, short header",
    0x75: "alarm, long header",
    0x7C: "DLMS/COSEM from the meter, long header",
    0x7D: "DLMS/COSEM from the meter, short header",
    0x7E: "OBIS-based data from the meter, long header",
    0x7F: "OBIS-based data from the meter, short header",
    0x80: "transport layer to the meter, long header (no application data)",
    0x81: "network layer",
    0x84: "transport layer to the meter, short header (no application data)",
    0x8A: "transport layer from the meter, short header (no application data)",
    0x8B: "transport layer from the meter, long header (no application data)",
    0xB8: "set baud rate 300 (wired)",
    0xB9: "set baud rate 600 (wired)",
    0xBA: "set baud rate 1200 (wired)",
    0xBB: "set baud rate 2400 (wired)",
    0xBC: "set baud rate 4800 (wired)",
    0xBD: "set baud rate 9600 (wired)",
    0xBE: "set baud rate 19200 (wired)",
    0xBF: "set baud rate 38400 (wired)",
}


def refusal(ci: int) -> str:
    """Why a CI field gives no meter data here (the FrameError message)."""
    if ci in MANUFACTURER_CIS:
        return (f"manufacturer-specific CI field {ci:02X}: no quirk describes this make, "
                "version and device type")
    name = _NAMES.get(ci)
    if name is not None:
        return f"CI field {ci:02X} ({name}) carries no meter data records"
    return f"unsupported CI field {ci:02X}"
