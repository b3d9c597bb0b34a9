"""Pure Modbus register writes: the FC6 / FC16 request PDUs and the check of the meter's echo.

The PDU (function and data) is the same over RTU and MBAP; rtu.pdu_frame and mbap.pdu_frame
wrap it. A write answer echoes the address and the value (FC6) or the count (FC16); anything
else is a FrameError, an exception response a DeviceRejected naming the Modbus code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from drivers.errors import DeviceRejected, FrameError

WRITE_SINGLE: Final[int] = 6
WRITE_MULTIPLE: Final[int] = 16
MAX_WRITE_WORDS: Final[int] = 123  # Modbus application protocol v1.1b3, 6.12
ECHO_LEN: Final[int] = 5  # function, address (2), value or count (2)
EXCEPTION_NAMES: Final[dict[int, str]] = {
    1: "illegal function", 2: "illegal data address", 3: "illegal data value",
    4: "slave device failure", 5: "acknowledge", 6: "slave device busy",
}


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """Words to write from `address`; FC6 for one word unless `multiple` (some meters take
    only FC16, even for one register)."""

    address: int
    words: tuple[int, ...]
    multiple: bool = False

    def __post_init__(self) -> None:
        if not 1 <= len(self.words) <= MAX_WRITE_WORDS:
            raise ValueError(f"a write holds 1..{MAX_WRITE_WORDS} words, got {len(self.words)}")
        if not 0 <= self.address <= 0x10000 - len(self.words):
            raise ValueError(f"address {self.address} with {len(self.words)} words is off the map")
        if any(not 0 <= w <= 0xFFFF for w in self.words):
            raise ValueError("every word is 0..0xFFFF")

    @property
    def function(self) -> int:
        return WRITE_SINGLE if len(self.words) == 1 and not self.multiple else WRITE_MULTIPLE


def write_pdu(req: WriteRequest) -> bytes:
    """The request PDU: FC6 address, value; FC16 address, count, byte count, words."""
    head = bytes((req.function,)) + req.address.to_bytes(2, "big")
    if req.function == WRITE_SINGLE:
        return head + req.words[0].to_bytes(2, "big")
    data = b"".join(w.to_bytes(2, "big") for w in req.words)
    return head + len(req.words).to_bytes(2, "big") + bytes((len(data),)) + data


def parse_write_pdu(pdu: bytes) -> WriteRequest:
    """The request a write PDU carries (the simulator's side, and the round-trip tests)."""
    if len(pdu) < ECHO_LEN or pdu[0] not in (WRITE_SINGLE, WRITE_MULTIPLE):
        raise FrameError(f"not a write request ({pdu[:16].hex()})", 0)
    address = int.from_bytes(pdu[1:3], "big")
    if pdu[0] == WRITE_SINGLE:
        if len(pdu) != ECHO_LEN:
            raise FrameError(f"FC6 request of {len(pdu)} bytes", 0)
        return WriteRequest(address, (int.from_bytes(pdu[3:5], "big"),))
    count = int.from_bytes(pdu[3:5], "big")
    if len(pdu) != 6 + 2 * count or pdu[5] != 2 * count or not 1 <= count <= MAX_WRITE_WORDS:
        raise FrameError(f"FC16 request: count {count}, {len(pdu)} bytes", 0)
    words = tuple(int.from_bytes(pdu[6 + 2 * i:8 + 2 * i], "big") for i in range(count))
    return WriteRequest(address, words, multiple=True)


def echo_pdu(req: WriteRequest) -> bytes:
    """The answer a meter that took the write sends."""
    tail = req.words[0] if req.function == WRITE_SINGLE else len(req.words)
    return bytes((req.function,)) + req.address.to_bytes(2, "big") + tail.to_bytes(2, "big")


def check_echo(pdu: bytes, req: WriteRequest, where: str) -> None:
    """Nothing when `pdu` is the echo of `req`; DeviceRejected for an exception response,
    FrameError for any other answer."""
    if pdu and pdu[0] == req.function | 0x80:
        code = pdu[1] if len(pdu) > 1 else None
        name = EXCEPTION_NAMES.get(code or 0, "unknown code")
        raise DeviceRejected(f"{where}: Modbus exception {code} ({name})")
    if pdu != echo_pdu(req):
        raise FrameError(f"{where}: write answer {pdu[:16].hex()} is not the echo "
                         f"{echo_pdu(req).hex()}", 0)
