"""Pure Modbus TCP (MBAP) helpers: framing a request PDU, the message end and the header."""

from __future__ import annotations

from typing import Final

from drivers.errors import FrameError

HEADER_LEN: Final[int] = 7  # transaction id (2), protocol id (2), length (2), unit id (1)
LENGTH_AT: Final[int] = 4
MIN_LENGTH: Final[int] = 3  # unit id, function, one byte (an exception code or a byte count)
MAX_LENGTH: Final[int] = 254  # unit id + the largest PDU (253 bytes, Modbus spec 4.1)
TID_MODULO: Final[int] = 0x10000


def read_request(tid: int, unit: int, function: int, address: int, count: int) -> bytes:
    """An FC3/FC4 request with its MBAP header."""
    return pdu_frame(tid, unit, bytes((function,)) + address.to_bytes(2, "big")
                     + count.to_bytes(2, "big"))


def pdu_frame(tid: int, unit: int, pdu: bytes) -> bytes:
    """Any request PDU (a read, an FC6 / FC16 write) with its MBAP header."""
    return (tid.to_bytes(2, "big") + b"\x00\x00" + (len(pdu) + 1).to_bytes(2, "big")
            + bytes((unit,)) + pdu)


def mbap_frame_end(buffer: bytes) -> int | None:
    """End of the MBAP frame starting the buffer; FrameError for a length no frame has (the
    stream is out of step and only a reconnect puts it right)."""
    if len(buffer) < LENGTH_AT + 2:
        return None
    length = int.from_bytes(buffer[LENGTH_AT:LENGTH_AT + 2], "big")
    if buffer[2:4] != b"\x00\x00" or not MIN_LENGTH <= length <= MAX_LENGTH:
        raise FrameError(f"MBAP header {buffer[:HEADER_LEN].hex()}: not a Modbus TCP frame", 0)
    total = LENGTH_AT + 2 + length
    return total if len(buffer) >= total else None


def split_frame(frame: bytes) -> tuple[int, int, bytes]:
    """(transaction id, unit id, PDU) of a whole MBAP frame."""
    return int.from_bytes(frame[:2], "big"), frame[HEADER_LEN - 1], frame[HEADER_LEN:]
