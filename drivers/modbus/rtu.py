"""Pure Modbus RTU helpers: CRC-16 and telling why a received response is unusable."""

from __future__ import annotations

import enum
from typing import Final

from drivers.checksums import crc16_a001

EXCEPTION_FRAME_LEN: Final[int] = 5  # address, function|0x80, code, CRC (2)
# FC6 echoes address and value, FC16 address and count: address, function, 4 bytes, CRC (2)
WRITE_FUNCTIONS: Final[frozenset[int]] = frozenset({6, 16})
WRITE_ANSWER_LEN: Final[int] = 8


def crc16(data: bytes) -> bytes:
    """Modbus CRC-16 (poly 0xA001, init 0xFFFF), low byte first as sent on the wire."""
    crc = crc16_a001(data, 0xFFFF)
    return bytes((crc & 0xFF, crc >> 8))


def with_crc(body: bytes) -> bytes:
    return body + crc16(body)


def read_request(slave: int, function: int, address: int, count: int) -> bytes:
    """An FC3/FC4 request frame."""
    body = bytes((slave, function)) + address.to_bytes(2, "big") + count.to_bytes(2, "big")
    return with_crc(body)


def pdu_frame(slave: int, pdu: bytes) -> bytes:
    """An RTU frame of any request PDU (function and data)."""
    return with_crc(bytes((slave,)) + pdu)


def response_length(buffer: bytes) -> int | None:
    """Length of the read, write or exception response starting the buffer (None: not enough
    bytes yet)."""
    if len(buffer) < 3:
        return None
    if buffer[1] & 0x80:
        return EXCEPTION_FRAME_LEN
    if buffer[1] in WRITE_FUNCTIONS:
        return WRITE_ANSWER_LEN
    return 5 + buffer[2]


class RxFault(enum.Enum):
    """Why the bytes received for a request did not make an answer."""

    NOTHING = "timeout"
    CRC = "crc"
    WRONG_SLAVE = "wrong_slave"
    TRUNCATED = "half_frame"
    GARBAGE = "garbage"


def classify_rx(buffer: bytes, slave: int, function: int) -> RxFault:
    """Best guess at why `buffer` (all bytes seen for one request) gave no usable response."""
    if not buffer:
        return RxFault.NOTHING
    if len(buffer) >= 2 and buffer[1] & 0x7F == function:
        length = response_length(buffer)
        if length is None or len(buffer) < length:
            return RxFault.TRUNCATED if buffer[0] == slave else RxFault.GARBAGE
        frame = buffer[:length]
        if crc16(frame[:-2]) != frame[-2:]:
            return RxFault.CRC
        if frame[0] != slave:
            return RxFault.WRONG_SLAVE
    return RxFault.GARBAGE


def rtu_frame_end(buffer: bytes) -> int | None:
    """The transport kit's message end for an RTU read or exception response."""
    length = response_length(buffer)
    return length if length is not None and len(buffer) >= length else None
