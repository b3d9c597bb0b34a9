"""CRC-16 with the reflected polynomial 0xA001, table-driven: Modbus RTU starts it at 0xFFFF
(CRC-16/MODBUS), a DSMR P1 telegram at 0 (CRC-16/ARC). One table for both, so neither pays a
bit-by-bit loop (a DSMR telegram is about a kilobyte)."""

from __future__ import annotations

from typing import Final

POLY_REFLECTED: Final = 0xA001


def _table() -> tuple[int, ...]:
    rows = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ POLY_REFLECTED if crc & 1 else crc >> 1
        rows.append(crc)
    return tuple(rows)


_TABLE: Final = _table()


def crc16_a001(data: bytes, init: int) -> int:
    """The CRC of `data` from `init` (0xFFFF for Modbus, 0 for DSMR)."""
    crc = init
    table = _TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc
