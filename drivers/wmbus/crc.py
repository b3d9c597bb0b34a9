"""CRC-16 variants of wireless M-Bus: EN 13757-4 link blocks and the iM871A HCI frames."""

from typing import Final


def _table(poly: int) -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ poly) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return tuple(table)


# EN 13757-4: polynomial x^16+x^13+x^12+x^11+x^10+x^8+x^6+x^5+x^2+1, init 0, result inverted.
_EN13757: Final = _table(0x3D65)
def _reflected_table(poly: int) -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


# CRC-CCITT reflected (0x8408), init 0xFFFF, result inverted (X.25): the iM871A HCI check.
_CCITT_REFLECTED: Final = _reflected_table(0x8408)


def crc_en13757(data: bytes | bytearray | memoryview) -> int:
    """EN 13757-4 CRC of `data` (as transmitted big-endian after each block)."""
    crc = 0
    table = _EN13757
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc ^ 0xFFFF


def crc_ccitt(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/X-25 style check used by the iM871A (reflected CCITT, init 0xFFFF, inverted)."""
    crc = 0xFFFF
    table = _CCITT_REFLECTED
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFF
