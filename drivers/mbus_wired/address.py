"""Wired M-Bus addresses: primary addresses, the 8-byte secondary address and select patterns.

A secondary address is id (8 BCD digits), manufacturer (2 bytes, three letters), version and
medium (EN 13757-3 fixed header). A select pattern is the same with wildcards: an id digit
`F` matches any digit, manufacturer 0xFFFF and version / medium 0xFF match anything
(EN 13757-2, the secondary search of annex C).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from drivers.errors import FrameError

# Primary addresses (EN 13757-2): 0 unconfigured, 1-250 meters, 253 the selected meter (network
# layer), 254 test broadcast (every meter answers), 255 broadcast (nobody answers).
UNCONFIGURED: Final = 0
FIRST_PRIMARY: Final = 1
LAST_PRIMARY: Final = 250
SELECTED: Final = 0xFD
BROADCAST_ANSWER: Final = 0xFE
BROADCAST: Final = 0xFF

ID_DIGITS: Final = 8
WILD_DIGIT: Final = "F"
WILD_MANUFACTURER: Final = 0xFFFF
WILD_BYTE: Final = 0xFF
SECONDARY_SIZE: Final = 8
_LETTER_BASE: Final = 64   # 'A' is 1 in the 5-bit manufacturer letter code


def manufacturer_text(code: int) -> str:
    """Three letters from the 2-byte manufacturer code (EN 13757-3 / FLAG association)."""
    return "".join(chr(((code >> shift) & 0x1F) + _LETTER_BASE) for shift in (10, 5, 0))


def manufacturer_code(text: str) -> int:
    """The 2-byte code of three letters A-Z; ValueError for anything else."""
    if len(text) != 3 or not all("A" <= c <= "Z" for c in text):
        raise ValueError(f"manufacturer {text!r} is not three letters A-Z")
    return sum((ord(c) - _LETTER_BASE) << shift for c, shift in zip(text, (10, 5, 0), strict=True))


def _check_id(digits: str, wildcards: bool) -> None:
    allowed = "0123456789" + (WILD_DIGIT if wildcards else "")
    if len(digits) != ID_DIGITS or any(c not in allowed for c in digits):
        raise ValueError(f"id {digits!r} is not {ID_DIGITS} digits"
                         + (" or F" if wildcards else ""))


def _check_byte(value: int, what: str) -> None:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{what} {value} is not a byte")


@dataclass(frozen=True, slots=True)
class SecondaryAddress:
    """One meter's secondary address; `id` is 8 decimal digits as printed on the meter."""

    id: str
    manufacturer: int
    version: int
    medium: int

    def __post_init__(self) -> None:
        _check_id(self.id, wildcards=False)
        if not 0 <= self.manufacturer <= 0xFFFF:
            raise ValueError(f"manufacturer code {self.manufacturer} is not 2 bytes")
        _check_byte(self.version, "version")
        _check_byte(self.medium, "medium")

    def text(self) -> str:
        """The usual printed form `12345678.ABB.02.07` (id, manufacturer, version, medium)."""
        return (f"{self.id}.{manufacturer_text(self.manufacturer)}"
                f".{self.version:02X}.{self.medium:02X}")

    def pattern(self) -> SelectPattern:
        return SelectPattern(self.id, self.manufacturer, self.version, self.medium)


@dataclass(frozen=True, slots=True)
class SelectPattern:
    """What a CI 0x52 select names; wildcards F (per id digit), 0xFFFF, 0xFF."""

    id: str = WILD_DIGIT * ID_DIGITS
    manufacturer: int = WILD_MANUFACTURER
    version: int = WILD_BYTE
    medium: int = WILD_BYTE

    def __post_init__(self) -> None:
        _check_id(self.id, wildcards=True)
        if not 0 <= self.manufacturer <= 0xFFFF:
            raise ValueError(f"manufacturer code {self.manufacturer} is not 2 bytes")
        _check_byte(self.version, "version")
        _check_byte(self.medium, "medium")

    def matches(self, address: SecondaryAddress) -> bool:
        if any(p not in (WILD_DIGIT, a) for p, a in zip(self.id, address.id, strict=True)):
            return False
        return (self.manufacturer in (WILD_MANUFACTURER, address.manufacturer)
                and self.version in (WILD_BYTE, address.version)
                and self.medium in (WILD_BYTE, address.medium))

    def with_digit(self, position: int, digit: int) -> SelectPattern:
        """This pattern with id digit `position` (0 = most significant) set to `digit`."""
        digits = self.id[:position] + str(digit) + self.id[position + 1:]
        return SelectPattern(digits, self.manufacturer, self.version, self.medium)

    def encode(self) -> bytes:
        """The 8 bytes of a select: id as BCD (F nibbles kept) little endian, then the rest."""
        return (bytes.fromhex(self.id)[::-1] + self.manufacturer.to_bytes(2, "little")
                + bytes([self.version, self.medium]))


def decode_pattern(data: bytes, offset: int = 0) -> SelectPattern:
    """A select pattern from 8 bytes; FrameError for an id nibble A-E (no digit, no wildcard)."""
    if len(data) != SECONDARY_SIZE:
        raise FrameError(f"secondary address of {len(data)} bytes, not {SECONDARY_SIZE}", offset)
    digits = data[:4][::-1].hex().upper()
    if any(c in "ABCDE" for c in digits):
        raise FrameError(f"secondary id {digits} has a nibble that is no digit", offset)
    return SelectPattern(digits, int.from_bytes(data[4:6], "little"), data[6], data[7])
