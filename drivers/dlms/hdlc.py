"""HDLC frames of IEC 62056-46 (DLMS over serial lines): pure functions, bytes <-> frames.

`7E | frame format (type 3, segmentation bit, 11-bit length) | destination | source | control |
HCS | information | FCS | 7E`. The length counts everything between the flags; HCS covers the
header and is present only when there is an information field, FCS covers all but the flags.
Both are CRC-16/X.25, sent low byte first. `decode_frame` skips garbage to the next flag and
tells an incomplete frame (`NeedMore`) from an invalid one (`FrameError` / `ChecksumError`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from drivers.dlms.errors import NeedMore
from drivers.errors import ChecksumError, FrameError

FLAG: Final = 0x7E
FORMAT_TYPE_3: Final = 0xA000  # top nibble 1010 of the two format bytes
FORMAT_TYPE_MASK: Final = 0xF000
SEGMENT_BIT: Final = 0x0800
LENGTH_MASK: Final = 0x07FF  # 11 bits: no frame can claim more than 2047 bytes
MIN_FRAME_LENGTH: Final = 2 + 1 + 1 + 1 + 2  # format, two 1-byte addresses, control, FCS
MAX_ADDRESS_BYTES: Final = 4
LLC_REQUEST: Final = b"\xe6\xe6\x00"  # client -> server
LLC_RESPONSE: Final = b"\xe6\xe7\x00"  # server -> client (and pushes)
POLL_FINAL: Final = 0x10
MAX_LOOKAHEAD_FLAGS: Final = 64  # bounds the search for a good frame behind a false start

_CRC_POLY_REFLECTED: Final = 0x8408  # 0x1021 bit-reversed: X.25 shifts LSB first


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC_POLY_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE: Final = _crc_table()


def crc16_x25(data: bytes) -> int:
    """CRC-16/X.25 (init 0xFFFF, reflected, final XOR 0xFFFF): HCS and FCS."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFF


class FrameKind(enum.Enum):
    I = "I"  # noqa: E741 - the standard's name for an information frame
    RR = "RR"
    RNR = "RNR"
    SNRM = "SNRM"
    DISC = "DISC"
    UA = "UA"
    DM = "DM"
    FRMR = "FRMR"
    UI = "UI"


_SUPERVISORY: Final = {0x01: FrameKind.RR, 0x05: FrameKind.RNR}  # low nibble, P/F masked
_UNNUMBERED: Final = {0x83: FrameKind.SNRM, 0x43: FrameKind.DISC, 0x63: FrameKind.UA,
                      0x0F: FrameKind.DM, 0x87: FrameKind.FRMR, 0x03: FrameKind.UI}
_UNNUMBERED_CODE: Final = {kind: code for code, kind in _UNNUMBERED.items()}
_SUPERVISORY_CODE: Final = {kind: code for code, kind in _SUPERVISORY.items()}


@dataclass(frozen=True, slots=True)
class Control:
    """The control byte: kind, poll/final bit and, where the kind has them, N(S) / N(R)."""

    kind: FrameKind
    poll_final: bool = True
    send_seq: int = 0  # N(S), I frames only
    recv_seq: int = 0  # N(R), I and S frames

    def encode(self) -> int:
        if not (0 <= self.send_seq <= 7 and 0 <= self.recv_seq <= 7):
            raise ValueError("sequence numbers are modulo 8")
        pf = POLL_FINAL if self.poll_final else 0
        if self.kind is FrameKind.I:
            return self.recv_seq << 5 | pf | self.send_seq << 1
        if self.kind in _SUPERVISORY_CODE:
            return self.recv_seq << 5 | pf | _SUPERVISORY_CODE[self.kind]
        return _UNNUMBERED_CODE[self.kind] | pf


def decode_control(byte: int, offset: int) -> Control:
    pf = bool(byte & POLL_FINAL)
    if not byte & 0x01:
        return Control(FrameKind.I, pf, (byte >> 1) & 7, byte >> 5)
    if byte & 0x03 == 0x01:
        kind = _SUPERVISORY.get(byte & 0x0F)
        if kind is None:
            raise FrameError(f"unknown supervisory control 0x{byte:02X} (REJ is not DLMS)",
                             offset)
        return Control(kind, pf, 0, byte >> 5)
    kind = _UNNUMBERED.get(byte & ~POLL_FINAL & 0xFF)
    if kind is None:
        raise FrameError(f"unknown unnumbered control 0x{byte:02X}", offset)
    return Control(kind, pf)


@dataclass(frozen=True, slots=True)
class Address:
    """An HDLC address: upper (logical device / client SAP) and, on 2- or 4-byte server
    addresses, lower (physical device). `size` is how many bytes it takes on the wire."""

    upper: int
    lower: int | None = None
    size: int = 1

    def encode(self) -> bytes:
        if self.size == 1:
            if self.lower is not None or not 0 <= self.upper <= 0x7F:
                raise ValueError(f"a 1-byte address holds 7 bits and no lower part: {self}")
            return bytes([self.upper << 1 | 1])
        if self.size not in (2, 4) or self.lower is None:
            raise ValueError(f"a server address is 1, 2 or 4 bytes with a lower part: {self}")
        bits = 7 * self.size // 2
        if not (0 <= self.upper < 1 << bits and 0 <= self.lower < 1 << bits):
            raise ValueError(f"address parts exceed {bits} bits: {self}")
        value = self.upper << bits | self.lower
        out = [(value >> (7 * i)) & 0x7F for i in reversed(range(self.size))]
        return bytes([b << 1 for b in out[:-1]] + [out[-1] << 1 | 1])


def decode_address(data: bytes, start: int) -> tuple[Address, int]:
    """The address at `start` (ends with the byte whose bit 0 is set); returns it and its end."""
    end = start
    while end < len(data) and not data[end] & 1:
        end += 1
        if end - start >= MAX_ADDRESS_BYTES:
            raise FrameError("HDLC address longer than 4 bytes", start)
    if end >= len(data):
        raise FrameError("HDLC address runs past the header", start)
    size = end - start + 1
    if size == 3:
        raise FrameError("HDLC address of 3 bytes (only 1, 2 or 4 are defined)", start)
    value = 0
    for byte in data[start:end + 1]:
        value = value << 7 | byte >> 1
    if size == 1:
        return Address(value), end + 1
    bits = 7 * size // 2
    return Address(value >> bits, value & ((1 << bits) - 1), size), end + 1


@dataclass(frozen=True, slots=True)
class HdlcFrame:
    """One frame; `information` is the raw information field (LLC header included)."""

    destination: Address
    source: Address
    control: Control
    information: bytes = b""
    segmented: bool = False  # more segments of the same information follow


def build_frame(frame: HdlcFrame) -> bytes:
    """The frame with flags, format, HCS (when there is information) and FCS."""
    header = frame.destination.encode() + frame.source.encode() + bytes([frame.control.encode()])
    hcs_len = 2 if frame.information else 0
    length = 2 + len(header) + hcs_len + len(frame.information) + 2
    if length > LENGTH_MASK:
        raise ValueError(f"an HDLC frame holds at most {LENGTH_MASK} bytes, not {length}")
    fmt = FORMAT_TYPE_3 | (SEGMENT_BIT if frame.segmented else 0) | length
    body = fmt.to_bytes(2, "big") + header
    if frame.information:
        body += crc16_x25(body).to_bytes(2, "little") + frame.information
    body += crc16_x25(body).to_bytes(2, "little")
    return bytes([FLAG]) + body + bytes([FLAG])


def frame_end(buffer: bytes) -> int | None:
    """Transport-kit end finder: the end of the first frame in `buffer` once all of it is
    there (the frame is checked later, by `decode_frame`)."""
    start = buffer.find(FLAG)
    while start >= 0 and start + 2 < len(buffer) and buffer[start + 1] == FLAG:
        start += 1  # back-to-back flags: the closing flag of one frame may open the next
    if start < 0 or len(buffer) < start + 3:
        return None
    length = int.from_bytes(buffer[start + 1:start + 3], "big") & LENGTH_MASK
    end = start + length + 2
    return end if len(buffer) >= end else None


def decode_frame(buffer: bytes) -> tuple[HdlcFrame, int]:
    """The first frame in `buffer` and the offset just past it (its closing flag).

    Bytes before the first flag are skipped. Raises `NeedMore` when the frame is not all there
    yet, `FrameError` / `ChecksumError` (with the byte offset) when it is not a valid frame.
    """
    start = buffer.find(FLAG)
    if start < 0:
        raise NeedMore("HDLC frame (no flag yet)")
    while start + 1 < len(buffer) and buffer[start + 1] == FLAG:
        start += 1
    if len(buffer) < start + 3:
        raise NeedMore("HDLC frame header", start + 3 - len(buffer))
    fmt = int.from_bytes(buffer[start + 1:start + 3], "big")
    if fmt & FORMAT_TYPE_MASK != FORMAT_TYPE_3:
        raise FrameError(f"frame format 0x{fmt:04X} is not type 3", start + 1)
    length = fmt & LENGTH_MASK
    if length < MIN_FRAME_LENGTH:
        raise FrameError(f"HDLC frame length {length} is below the minimum", start + 1)
    end = start + length + 1  # index of the closing flag
    if len(buffer) <= end:
        raise NeedMore("HDLC frame", end + 1 - len(buffer))
    if buffer[end] != FLAG:
        raise FrameError("HDLC frame does not end with a flag where its length says", end)
    return _decode_body(buffer[start + 1:end], start + 1, bool(fmt & SEGMENT_BIT)), end + 1


def _decode_body(body: bytes, offset: int, segmented: bool) -> HdlcFrame:
    if crc16_x25(body[:-2]) != int.from_bytes(body[-2:], "little"):
        raise ChecksumError("HDLC FCS mismatch", offset + len(body) - 2)
    destination, at = decode_address(body, 2)
    source, at = decode_address(body, at)
    if at >= len(body) - 2:
        raise FrameError("HDLC frame has no control byte", offset + at)
    control = decode_control(body[at], offset + at)
    at += 1
    information = b""
    if at < len(body) - 2:
        if at + 2 > len(body) - 2:
            raise FrameError("HDLC frame too short for its HCS", offset + at)
        if crc16_x25(body[:at]) != int.from_bytes(body[at:at + 2], "little"):
            raise ChecksumError("HDLC HCS mismatch", offset + at)
        information = body[at + 2:-2]
    return HdlcFrame(destination, source, control, information, segmented)


def strip_llc(information: bytes) -> bytes:
    """The APDU after the LLC header E6 E6 00 (request) or E6 E7 00 (response / push)."""
    if information[:3] not in (LLC_REQUEST, LLC_RESPONSE):
        raise FrameError(f"LLC header {information[:3].hex().upper()} is not E6E600/E6E700", 0)
    return information[3:]


@dataclass(frozen=True, slots=True)
class Scan:
    """What `scan_frames` found: the frames, the errors it skipped over, the bytes kept for
    the next read (an incomplete frame)."""

    frames: tuple[HdlcFrame, ...]
    errors: tuple[FrameError, ...]
    rest: bytes


def scan_frames(buffer: bytes) -> Scan:
    """Every frame in a push stream, resynchronising after damage: a frame that does not
    check is skipped from its opening flag to the next flag, and reading goes on there."""
    frames: list[HdlcFrame] = []
    errors: list[FrameError] = []
    at = 0
    while True:
        try:
            frame, used = decode_frame(buffer[at:])
        except NeedMore:
            start = buffer.find(FLAG, at)
            later = _complete_frame_after(buffer, start)
            if later is None:
                return Scan(tuple(frames), tuple(errors), b"" if start < 0 else buffer[start:])
            errors.append(FrameError("false frame start skipped", start))
            at = later
            continue
        except FrameError as error:
            errors.append(error)
            at = _next_flag_after(buffer, at)
            continue
        frames.append(frame)
        at += used


def _next_flag_after(buffer: bytes, at: int) -> int:
    """The next flag after the one a damaged frame opened with (or the end)."""
    start = buffer.find(FLAG, at)
    while start + 1 < len(buffer) and buffer[start + 1] == FLAG:
        start += 1
    following = buffer.find(FLAG, start + 1)
    return len(buffer) if following < 0 else following


def _complete_frame_after(buffer: bytes, start: int) -> int | None:
    """The position of a later flag opening a frame that is complete and checks, when the
    candidate at `start` still needs bytes: a stray 7E A0 must not hold back a good frame
    behind it until the next push. Bounded: only flags within the longest frame, and
    `MAX_LOOKAHEAD_FLAGS` of them."""
    if start < 0:
        return None
    flag = start
    for _ in range(MAX_LOOKAHEAD_FLAGS):
        flag = buffer.find(FLAG, flag + 1, start + LENGTH_MASK + 2)
        if flag < 0:
            return None
        try:
            decode_frame(buffer[flag:])
        except (NeedMore, FrameError):
            continue
        return flag
    return None
