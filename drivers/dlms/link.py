"""DLMS link helpers above the frames: HDLC SNRM/UA parameter negotiation, HDLC segment
reassembly, the TCP/UDP wrapper (IEC 62056-47, port 4059) and DLMS inside wired M-Bus frames.

All pure: bytes in, typed values or bytes out; the session (later) moves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from drivers.dlms.errors import NeedMore
from drivers.dlms.hdlc import FrameKind, HdlcFrame, strip_llc
from drivers.errors import FrameError
from drivers.mbus.frame import is_wired_long_frame, unwrap_wired_frame

# A reassembled APDU larger than this is a runaway (a lost final segment), not a meter's answer.
MAX_APDU_BYTES: Final = 65536

# ---- SNRM / UA parameters (IEC 62056-46 6.4.4.4.3.2, ISO/IEC 13239 format 0x81 group 0x80) ----
PARAMETER_FORMAT: Final = 0x81
PARAMETER_GROUP: Final = 0x80
_MAX_INFO_TX: Final = 0x05
_MAX_INFO_RX: Final = 0x06
_WINDOW_TX: Final = 0x07
_WINDOW_RX: Final = 0x08
DEFAULT_MAX_INFO: Final = 128  # what a station may assume when the parameter is absent
DEFAULT_WINDOW: Final = 1


@dataclass(frozen=True, slots=True)
class LinkParameters:
    """What one side proposes (SNRM) or grants (UA): max information field length and window
    size per direction, as seen by the side that sends the frame."""

    max_info_tx: int = DEFAULT_MAX_INFO
    max_info_rx: int = DEFAULT_MAX_INFO
    window_tx: int = DEFAULT_WINDOW
    window_rx: int = DEFAULT_WINDOW

    def encode(self) -> bytes:
        body = b""
        for ident, value, size in ((_MAX_INFO_TX, self.max_info_tx, 0),
                                   (_MAX_INFO_RX, self.max_info_rx, 0),
                                   (_WINDOW_TX, self.window_tx, 4),
                                   (_WINDOW_RX, self.window_rx, 4)):
            raw = value.to_bytes(size or (1 if value < 0x100 else 2), "big")
            body += bytes([ident, len(raw)]) + raw
        return bytes([PARAMETER_FORMAT, PARAMETER_GROUP, len(body)]) + body

    def agreed_with(self, granted: LinkParameters) -> LinkParameters:
        """The client's view after the UA: each value the smaller of what was proposed and
        what the server granted (the server's tx is our rx)."""
        return LinkParameters(min(self.max_info_tx, granted.max_info_rx),
                              min(self.max_info_rx, granted.max_info_tx),
                              min(self.window_tx, granted.window_rx),
                              min(self.window_rx, granted.window_tx))


def decode_parameters(information: bytes) -> LinkParameters:
    """The parameters of a SNRM or UA information field; absent ones take their defaults."""
    if not information:
        return LinkParameters()
    if len(information) < 3 or information[:2] != bytes([PARAMETER_FORMAT, PARAMETER_GROUP]):
        raise FrameError("SNRM/UA parameters do not start with 81 80", 0)
    if information[2] != len(information) - 3:
        raise FrameError("SNRM/UA parameter group length does not match", 2)
    values = {_MAX_INFO_TX: DEFAULT_MAX_INFO, _MAX_INFO_RX: DEFAULT_MAX_INFO,
              _WINDOW_TX: DEFAULT_WINDOW, _WINDOW_RX: DEFAULT_WINDOW}
    at = 3
    while at < len(information):
        if at + 2 > len(information):
            raise FrameError("SNRM/UA parameter cut short", at)
        ident, size = information[at], information[at + 1]
        if size > 4 or at + 2 + size > len(information):
            raise FrameError(f"SNRM/UA parameter 0x{ident:02X} of length {size}", at)
        if ident in values:  # unknown parameters are skipped, as ISO/IEC 13239 asks
            values[ident] = int.from_bytes(information[at + 2:at + 2 + size], "big")
        at += 2 + size
    return LinkParameters(values[_MAX_INFO_TX], values[_MAX_INFO_RX], values[_WINDOW_TX],
                          values[_WINDOW_RX])


# ---- segment reassembly ----------------------------------------------------------------------

class Reassembler:
    """Joins the information fields of segmented I / UI frames into one APDU.

    `add(frame)` returns the APDU (LLC header removed) once the frame without the segmentation
    bit has come, else None. The LLC header is only in the first segment.
    """

    def __init__(self, max_bytes: int = MAX_APDU_BYTES) -> None:
        self._max = max_bytes
        self._parts: list[bytes] = []
        self._size = 0

    @property
    def pending(self) -> bool:
        return bool(self._parts)

    def add(self, frame: HdlcFrame) -> bytes | None:
        if frame.control.kind not in (FrameKind.I, FrameKind.UI):
            raise FrameError(f"a {frame.control.kind.value} frame carries no APDU segment", 0)
        self._size += len(frame.information)
        if self._size > self._max:
            self.reset()
            raise FrameError(f"segmented APDU beyond {self._max} bytes", 0)
        self._parts.append(frame.information)
        if frame.segmented:
            return None
        whole = b"".join(self._parts)
        self.reset()
        return strip_llc(whole)

    def reset(self) -> None:
        self._parts, self._size = [], 0


# ---- TCP / UDP wrapper (IEC 62056-47) ---------------------------------------------------------
WRAPPER_VERSION: Final = 1
WRAPPER_HEADER_BYTES: Final = 8
DLMS_TCP_PORT: Final = 4059


@dataclass(frozen=True, slots=True)
class WrapperPdu:
    source_wport: int
    destination_wport: int
    apdu: bytes

    def encode(self) -> bytes:
        return (WRAPPER_VERSION.to_bytes(2, "big") + self.source_wport.to_bytes(2, "big")
                + self.destination_wport.to_bytes(2, "big")
                + len(self.apdu).to_bytes(2, "big") + self.apdu)


def wrapper_end(buffer: bytes) -> int | None:
    """Transport-kit end finder for one wrapper PDU."""
    if len(buffer) < WRAPPER_HEADER_BYTES:
        return None
    end = WRAPPER_HEADER_BYTES + int.from_bytes(buffer[6:8], "big")
    return end if len(buffer) >= end else None


def decode_wrapper(buffer: bytes) -> tuple[WrapperPdu, int]:
    """The wrapper PDU at the start of `buffer` and its length; NeedMore / FrameError."""
    if len(buffer) < WRAPPER_HEADER_BYTES:
        raise NeedMore("wrapper header", WRAPPER_HEADER_BYTES - len(buffer))
    version = int.from_bytes(buffer[0:2], "big")
    if version != WRAPPER_VERSION:
        raise FrameError(f"wrapper version {version}, not {WRAPPER_VERSION}", 0)
    end = wrapper_end(buffer)
    if end is None:
        raise NeedMore("wrapper PDU", WRAPPER_HEADER_BYTES + int.from_bytes(buffer[6:8], "big")
                       - len(buffer))
    return WrapperPdu(int.from_bytes(buffer[2:4], "big"), int.from_bytes(buffer[4:6], "big"),
                      buffer[WRAPPER_HEADER_BYTES:end]), end


# ---- DLMS in wired M-Bus long frames (push from Austrian / Swiss meters) ----------------------
# EN 13757-2 reserves CI 0x00..0x1F for DLMS: the low nibble numbers the segment, bit 4 marks the
# last one; STSAP and DTSAP follow the CI (observed: `53 FF 00 01 67 DB 08 ...` then
# `53 FF 11 01 67 ...`).
MBUS_DLMS_CI_MAX: Final = 0x1F
MBUS_LAST_SEGMENT: Final = 0x10
MBUS_SEGMENT_MASK: Final = 0x0F


@dataclass(frozen=True, slots=True)
class MbusSegment:
    control: int
    address: int
    segment: int
    last: bool
    stsap: int
    dtsap: int
    data: bytes


def decode_mbus_segment(frame: bytes) -> MbusSegment:
    """One wired long frame carrying a DLMS segment (checksum checked)."""
    if not is_wired_long_frame(frame):
        raise FrameError("not a wired M-Bus long frame", 0)
    control, address, body = unwrap_wired_frame(frame)
    ci = body[0]
    if ci > MBUS_DLMS_CI_MAX:
        raise FrameError(f"M-Bus CI 0x{ci:02X} is not a DLMS segment (0x00..0x1F)", 6)
    if len(body) < 3:
        raise FrameError("M-Bus DLMS segment without STSAP/DTSAP", 7)
    return MbusSegment(control, address, ci & MBUS_SEGMENT_MASK, bool(ci & MBUS_LAST_SEGMENT),
                       body[1], body[2], body[3:])


def join_mbus_segments(frames: list[bytes]) -> bytes:
    """The APDU carried by the segments, in order (numbered 0, 1, ..., the last one flagged)."""
    parts = []
    for expected, frame in enumerate(frames):
        segment = decode_mbus_segment(frame)
        if segment.segment != expected & MBUS_SEGMENT_MASK:
            raise FrameError(f"M-Bus DLMS segment {segment.segment}, expected {expected}", 6)
        parts.append(segment.data)
        if segment.last:
            if expected != len(frames) - 1:
                raise FrameError("frames after the last M-Bus DLMS segment", 0)
            return b"".join(parts)
    raise NeedMore("M-Bus DLMS message (no last segment yet)")
