"""FT1.2 frames (IEC 60870-5-1/-2), shared by wired M-Bus (EN 13757-2) and IEC 60870-5-102.

Four formats: the single character `E5`, the short frame `10 C A CS 16`, the control frame and
the long frame `68 L L 68 C A CI data CS 16` (a control frame is a long frame with no data
after CI, M-Bus's `L = 3`). The link address is one byte (M-Bus) or two, little endian (some
60870-5-102 meters); `address_width` says which. For 60870-5-102 the byte M-Bus calls CI is
the first byte of the ASDU (its type identification).

Pure functions. `find_frame` looks at the start of a buffer and answers one of three things:
`Found` (a checked frame and its size), `NeedMore` (a frame may still complete) or `Invalid`
(these bytes can never start a frame; skip `skip` bytes and look again). Garbage is skipped
to the next start byte, and a bad frame skips only its start byte, so a real frame behind a
stray `68` is still found (zigpy-znp's `uart.py` keeps the same two outcomes apart).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from drivers.errors import ChecksumError, FrameError

SINGLE_CHAR: Final = 0xE5   # the M-Bus ACK (60870-5-2 also allows it for "no data")
SHORT_START: Final = 0x10
LONG_START: Final = 0x68
STOP: Final = 0x16
START_BYTES: Final = frozenset((SINGLE_CHAR, SHORT_START, LONG_START))
LONG_HEADER: Final = 4      # 68 L L 68
TRAILER: Final = 2          # CS 16
MAX_L: Final = 255          # L is one byte: C, A and at most 252 bytes of CI + data (M-Bus)
ADDRESS_WIDTHS: Final = (1, 2)


@dataclass(frozen=True, slots=True)
class SingleChar:
    """The single character E5."""


@dataclass(frozen=True, slots=True)
class ShortFrame:
    control: int
    address: int


@dataclass(frozen=True, slots=True)
class ControlFrame:
    """A long frame with CI and no data (`68 03 03 68 C A CI CS 16` with a 1-byte address)."""

    control: int
    address: int
    ci: int


@dataclass(frozen=True, slots=True)
class LongFrame:
    """A long frame with data after CI; `data` is never empty (that is a ControlFrame)."""

    control: int
    address: int
    ci: int
    data: bytes

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("a long frame without data is a ControlFrame")


Frame = SingleChar | ShortFrame | ControlFrame | LongFrame


@dataclass(frozen=True, slots=True)
class Found:
    frame: Frame
    size: int   # bytes the frame took from the start of the buffer


@dataclass(frozen=True, slots=True)
class NeedMore:
    needed: int   # at least this many bytes in all before anything can be decided


@dataclass(frozen=True, slots=True)
class Invalid:
    skip: int     # bytes to drop from the start before looking again (>= 1)
    reason: str
    checksum: bool = False   # the frame was whole but its checksum failed


Outcome = Found | NeedMore | Invalid


def checksum(body: bytes) -> int:
    """The FT1.2 check: the arithmetic sum of C, A and user data, modulo 256."""
    return sum(body) & 0xFF


def _check_address_width(address_width: int) -> None:
    if address_width not in ADDRESS_WIDTHS:
        raise ValueError(f"address width {address_width} is not 1 or 2")


def _next_start(buf: bytes, after: int) -> int:
    """Bytes to skip to reach the next start byte after position `after` (or all of them)."""
    for index in range(after + 1, len(buf)):
        if buf[index] in START_BYTES:
            return index
    return len(buf)


def find_frame(buf: bytes, address_width: int = 1) -> Outcome:
    """What the bytes at the start of `buf` are: a frame, a frame still arriving, or junk."""
    _check_address_width(address_width)
    if not buf:
        return NeedMore(1)
    start = buf[0]
    if start == SINGLE_CHAR:
        return Found(SingleChar(), 1)
    if start == SHORT_START:
        return _find_short(buf, address_width)
    if start == LONG_START:
        return _find_long(buf, address_width)
    return Invalid(_next_start(buf, 0), f"{start:02X} is no FT1.2 start byte")


def _find_short(buf: bytes, width: int) -> Outcome:
    size = 1 + 1 + width + TRAILER
    if len(buf) < size:
        return NeedMore(size)
    body = buf[1:2 + width]
    if buf[size - 1] != STOP:
        return Invalid(_next_start(buf, 0), f"short frame stop byte {buf[size - 1]:02X}")
    if checksum(body) != buf[size - 2]:
        return Invalid(_next_start(buf, 0), "short frame checksum mismatch", checksum=True)
    return Found(ShortFrame(body[0], int.from_bytes(body[1:], "little")), size)


def _find_long(buf: bytes, width: int) -> Outcome:
    if len(buf) < 3:
        return NeedMore(LONG_HEADER)
    length = buf[1]
    if buf[2] != length:
        return Invalid(_next_start(buf, 0), f"long frame L fields differ ({length}, {buf[2]})")
    if length < 2 + width:   # C, A and CI at least
        return Invalid(_next_start(buf, 0), f"long frame L = {length} holds no C, A and CI")
    if len(buf) < LONG_HEADER:
        return NeedMore(LONG_HEADER)
    if buf[3] != LONG_START:
        return Invalid(_next_start(buf, 0), f"long frame second start byte {buf[3]:02X}")
    size = LONG_HEADER + length + TRAILER
    if len(buf) < size:
        return NeedMore(size)
    if buf[size - 1] != STOP:
        return Invalid(_next_start(buf, 0), f"long frame stop byte {buf[size - 1]:02X}")
    body = buf[LONG_HEADER:LONG_HEADER + length]
    if checksum(body) != buf[size - 2]:
        return Invalid(_next_start(buf, 0), "long frame checksum mismatch", checksum=True)
    control, address = body[0], int.from_bytes(body[1:1 + width], "little")
    ci, data = body[1 + width], bytes(body[2 + width:])
    frame: Frame = LongFrame(control, address, ci, data) if data else ControlFrame(
        control, address, ci)
    return Found(frame, size)


def parse_frame(data: bytes, address_width: int = 1) -> Frame:
    """The one frame `data` holds, exactly; anything else raises FrameError (ChecksumError for a
    whole frame with a wrong checksum)."""
    outcome = find_frame(data, address_width)
    if isinstance(outcome, NeedMore):
        raise FrameError(f"frame truncated: {len(data)} of at least {outcome.needed} bytes",
                         len(data))
    if isinstance(outcome, Invalid):
        error = ChecksumError if outcome.checksum else FrameError
        raise error(outcome.reason, 0)
    if outcome.size != len(data):
        raise FrameError(f"{len(data) - outcome.size} bytes after the frame", outcome.size)
    return outcome.frame


def frame_end(buf: bytes, address_width: int = 1) -> int | None:
    """An end finder for the transport kit (`ByteStream.read_message`): where the frame at the
    start of `buf` ends, None while it may still complete; FrameError (ChecksumError) for bytes
    that can never become one, so a session reading one frame fails fast on garbage."""
    outcome = find_frame(buf, address_width)
    if isinstance(outcome, Found):
        return outcome.size
    if isinstance(outcome, NeedMore):
        return None
    error = ChecksumError if outcome.checksum else FrameError
    raise error(outcome.reason, 0)


def scan(buf: bytes, address_width: int = 1) -> tuple[list[Frame], list[Invalid], int]:
    """Every frame in `buf`, the junk skipped on the way, and where undecided bytes begin."""
    frames: list[Frame] = []
    junk: list[Invalid] = []
    pos = 0
    while pos < len(buf):
        outcome = find_frame(buf[pos:], address_width)
        if isinstance(outcome, NeedMore):
            break
        if isinstance(outcome, Invalid):
            junk.append(outcome)
            pos += outcome.skip
        else:
            frames.append(outcome.frame)
            pos += outcome.size
    return frames, junk, pos


def _address_bytes(address: int, width: int) -> bytes:
    _check_address_width(width)
    if not 0 <= address < 1 << (8 * width):
        raise ValueError(f"address {address} does not fit {width} byte(s)")
    return address.to_bytes(width, "little")


def _byte(value: int, what: str) -> int:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{what} {value} is not a byte")
    return value


def build_frame(frame: Frame, address_width: int = 1) -> bytes:
    """The bytes of `frame`; ValueError for fields that do not fit."""
    if isinstance(frame, SingleChar):
        return bytes([SINGLE_CHAR])
    if isinstance(frame, ShortFrame):
        body = bytes([_byte(frame.control, "C")]) + _address_bytes(frame.address, address_width)
        return bytes([SHORT_START]) + body + bytes([checksum(body), STOP])
    data = frame.data if isinstance(frame, LongFrame) else b""
    body = (bytes([_byte(frame.control, "C")]) + _address_bytes(frame.address, address_width)
            + bytes([_byte(frame.ci, "CI")]) + data)
    if len(body) > MAX_L:
        raise ValueError(f"long frame body of {len(body)} bytes exceeds L = {MAX_L}")
    head = bytes([LONG_START, len(body), len(body), LONG_START])
    return head + body + bytes([checksum(body), STOP])
