"""The one CRC-16 (0xA001 reflected): the catalogue check values of CRC-16/MODBUS and
CRC-16/ARC, and the table agrees with the bit-by-bit definition on any bytes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from drivers.checksums import crc16_a001
from drivers.iec62056.framing import crc16_dsmr
from drivers.modbus.rtu import crc16

CHECK_INPUT = b"123456789"  # the CRC catalogue's check string


def bitwise(data: bytes, init: int) -> int:
    crc = init
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def test_catalogue_check_values() -> None:
    assert crc16_a001(CHECK_INPUT, 0xFFFF) == 0x4B37  # CRC-16/MODBUS
    assert crc16_a001(CHECK_INPUT, 0) == 0xBB3D  # CRC-16/ARC, the DSMR P1 CRC
    assert crc16(CHECK_INPUT) == bytes((0x37, 0x4B))  # low byte first on the wire
    assert crc16_dsmr(CHECK_INPUT) == 0xBB3D


@given(st.binary(max_size=2048), st.sampled_from([0, 0xFFFF]))
def test_the_table_is_the_bitwise_definition(data: bytes, init: int) -> None:
    assert crc16_a001(data, init) == bitwise(data, init)
