"""A wired M-Bus meter's address as the config and the CLI write it.

Primary: an integer 0-250. Secondary: 16 hex digits in libmbus's order (what its
`mbus-serial-scan-secondary` prints): the id's 8 digits, the manufacturer's two bytes as they
go on the wire (low byte first), version, medium. `12345678A7320107` is id 12345678,
manufacturer 0x32A7 (LUG), version 0x01, medium 0x07 (water).
"""

from __future__ import annotations

from typing import Any, Final

from drivers.mbus_wired.address import LAST_PRIMARY, SecondaryAddress

MeterAddress = int | SecondaryAddress
SECONDARY_HEX: Final = 16


def secondary_hex(address: SecondaryAddress) -> str:
    """The 16-hex-digit form of a secondary address."""
    low, high = address.manufacturer & 0xFF, address.manufacturer >> 8
    return f"{address.id}{low:02X}{high:02X}{address.version:02X}{address.medium:02X}"


def parse_meter_address(value: int | str) -> MeterAddress:
    """A primary address (int, or its decimal text) or a 16-hex-digit secondary address;
    ValueError naming what is wrong."""
    if isinstance(value, bool):
        raise ValueError("an address is a number or 16 hex digits, not true / false")
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()
                                  and len(value) <= 3):
        number = int(value)
        if not 0 <= number <= LAST_PRIMARY:
            raise ValueError(f"primary address {number} is not 0-{LAST_PRIMARY}")
        return number
    text = value.strip().upper()
    if len(text) != SECONDARY_HEX or any(c not in "0123456789ABCDEF" for c in text):
        raise ValueError(f"{value!r} is neither a primary address 0-{LAST_PRIMARY} nor a "
                         f"secondary address of {SECONDARY_HEX} hex digits")
    if not text[:8].isdigit():
        raise ValueError(f"secondary address {value!r}: its first 8 of the 16 hex digits are "
                         "the meter's id, decimal digits only (no wildcard)")
    manufacturer = int(text[10:12] + text[8:10], 16)
    return SecondaryAddress(text[:8], manufacturer, int(text[12:14], 16), int(text[14:16], 16))


def address_check(value: Any) -> str | None:
    """The config schema's check of a meter's `address` key."""
    try:
        parse_meter_address(value)
    except ValueError as exc:
        return str(exc)
    return None


def address_text(address: MeterAddress) -> str:
    """How the config writes it (a scan's hit matches a configured meter by this)."""
    return secondary_hex(address) if isinstance(address, SecondaryAddress) else str(address)
