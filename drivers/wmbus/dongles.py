"""USB wM-Bus receivers: iM871A HCI and AMB8465 command framing, and rtl_wmbus-style lines.

Each framer is pure bytes -> frames: `feed()` takes whatever the port gave, returns the complete
frames, skips garbage up to the next start byte and counts what it had to drop.
Constants marked "unverified" come from the makers' manuals as summarised in public readers and
have not been checked against hardware on this project (see docs/wmbus.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from drivers.wmbus.crc import crc_ccitt

MAX_BUFFER: Final = 4096   # a dongle that sends this much without a frame is garbling

# ---- iM871A (IMST WMBus HCI) -----------------------------------------------------------
IM_START: Final = 0xA5
IM_EP_DEVMGMT: Final = 0x01
IM_EP_RADIOLINK: Final = 0x02
IM_FLAG_CRC: Final = 0x80
IM_FLAG_RSSI: Final = 0x40
IM_FLAG_TIMESTAMP: Final = 0x20
IM_PING_REQ, IM_PING_RSP = 0x01, 0x02
IM_SET_CONFIG_REQ, IM_SET_CONFIG_RSP = 0x03, 0x04
IM_RESET_REQ, IM_RESET_RSP = 0x07, 0x08
IM_WMBUS_MSG_IND: Final = 0x03
IM_LINK_MODES: Final = {"S1": 0x00, "T1": 0x03, "C1": 0x06, "C1+T1": 0x09}   # unverified C1+T1

# ---- AMB8465 (Amber / Würth) -----------------------------------------------------------
AMB_START: Final = 0xFF
AMB_DATA_IND: Final = 0x03
AMB_SET_MODE_REQ: Final = 0x04
AMB_RESET_REQ: Final = 0x05
AMB_SERIALNO_REQ: Final = 0x0B
AMB_RESPONSE: Final = 0x80       # responses carry the request command | 0x80
AMB_LINK_MODES: Final = {"S1": 0x03, "T1": 0x08, "C1": 0x0E, "C1+T1": 0x09}

LINK_MODES: Final = tuple(IM_LINK_MODES)


@dataclass(frozen=True, slots=True)
class DongleFrame:
    """One frame from a dongle: a received telegram (`frame` set) or a command response."""

    command: int
    payload: bytes
    frame: bytes | None = None      # wM-Bus frame from the L field (CRCs stripped)
    rssi_dbm: int | None = None


# ---- iM871A ----------------------------------------------------------------------------

def im871a_encode(endpoint: int, message: int, payload: bytes = b"", *,
                  rssi: int | None = None, with_crc: bool = True) -> bytes:
    control = endpoint | (IM_FLAG_CRC if with_crc else 0)
    tail = b""
    if rssi is not None:
        control |= IM_FLAG_RSSI
        tail = bytes([rssi])
    body = bytes([control, message, len(payload)]) + payload + tail
    check = crc_ccitt(body).to_bytes(2, "big") if with_crc else b""
    return bytes([IM_START]) + body + check


def im871a_rssi_dbm(raw: int) -> int:
    """iM871A RSSI byte to dBm (approximation from the HCI manual, unverified)."""
    return raw // 2 - 120


class _Framer:
    """Common buffering of a dongle byte stream; subclasses find one frame in `_next`."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.dropped_bytes = 0
        self.bad_frames = 0

    def feed(self, data: bytes) -> list[DongleFrame]:
        self._buffer += data
        frames: list[DongleFrame] = []
        while True:
            frame = self._next()
            if frame is None:
                break
            frames.append(frame)
        if len(self._buffer) > MAX_BUFFER:
            self.dropped_bytes += len(self._buffer)
            self._buffer.clear()
        return frames

    def _next(self) -> DongleFrame | None:
        raise NotImplementedError


class Im871aFramer(_Framer):
    """Splits the iM871A byte stream into HCI frames."""

    def _skip(self, count: int) -> None:
        self.dropped_bytes += count
        del self._buffer[:count]

    def _next(self) -> DongleFrame | None:
        buf = self._buffer
        while buf:
            start = buf.find(IM_START)
            if start < 0:
                self._skip(len(buf))
                return None
            if start:
                self._skip(start)
            if len(buf) < 4:
                return None
            control, message, length = buf[1], buf[2], buf[3]
            extra = (4 if control & IM_FLAG_TIMESTAMP else 0) + (1 if control & IM_FLAG_RSSI else 0)
            total = 4 + length + extra + (2 if control & IM_FLAG_CRC else 0)
            if len(buf) < total:
                return None
            raw = bytes(buf[:total])
            if control & IM_FLAG_CRC and crc_ccitt(raw[1:-2]) != int.from_bytes(raw[-2:], "big"):
                self.bad_frames += 1
                self._skip(1)       # resync on the next start byte
                continue
            del buf[:total]
            return self._frame(control, message, raw[4:4 + length], raw[4 + length:])
        return None

    @staticmethod
    def _frame(control: int, message: int, payload: bytes, trailer: bytes) -> DongleFrame:
        endpoint = control & 0x0F
        rssi = None
        if control & IM_FLAG_RSSI:
            rssi = im871a_rssi_dbm(trailer[4 if control & IM_FLAG_TIMESTAMP else 0])
        if endpoint == IM_EP_RADIOLINK and message == IM_WMBUS_MSG_IND:
            # The HCI payload starts at the C field: put the L field back.
            return DongleFrame(message, payload, bytes([len(payload)]) + payload, rssi)
        return DongleFrame((endpoint << 8) | message, payload, None, rssi)


# ---- AMB8465 ---------------------------------------------------------------------------

def amb8465_encode(command: int, payload: bytes = b"") -> bytes:
    body = bytes([AMB_START, command, len(payload)]) + payload
    check = 0
    for byte in body:
        check ^= byte
    return body + bytes([check])


def amb8465_rssi_dbm(raw: int) -> int:
    """AMB8465 RSSI byte (two's complement, half dB steps, -74 dBm offset) to dBm."""
    signed = raw - 256 if raw >= 128 else raw
    return signed // 2 - 74


class Amb8465Framer(_Framer):
    """Splits the AMB8465 byte stream (command mode output, RSSI appended) into frames."""

    def __init__(self, rssi_appended: bool = True) -> None:
        super().__init__()
        self._rssi = rssi_appended

    def _next(self) -> DongleFrame | None:
        buf = self._buffer
        while buf:
            start = buf.find(AMB_START)
            if start < 0:
                self.dropped_bytes += len(buf)
                buf.clear()
                return None
            if start:
                self.dropped_bytes += start
                del buf[:start]
            if len(buf) < 4:
                return None
            total = 3 + buf[2] + 1
            if len(buf) < total:
                return None
            check = 0
            for byte in buf[:total]:
                check ^= byte
            if check:
                self.bad_frames += 1
                self.dropped_bytes += 1
                del buf[:1]
                continue
            command, payload = buf[1], bytes(buf[3:total - 1])
            del buf[:total]
            return self._frame(command, payload)
        return None

    def _frame(self, command: int, payload: bytes) -> DongleFrame:
        if command != AMB_DATA_IND:
            return DongleFrame(command, payload)
        rssi = None
        if self._rssi and payload:
            rssi, payload = amb8465_rssi_dbm(payload[-1]), payload[:-1]
        return DongleFrame(command, payload, bytes([len(payload)]) + payload, rssi)


# ---- line-based input (rtl_wmbus and similar SDR receivers) ----------------------------

def parse_line(line: str) -> DongleFrame | None:
    """A hex telegram per line, or rtl_wmbus `MODE;CRC_OK;3OF6_OK;TIME;RSSI;...;0xHEX`.

    Returns None for blank lines, comments and rtl_wmbus lines whose CRC check failed.
    Raises ValueError for text that is not hex.
    """
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    rssi = None
    if ";" in text:
        fields = text.split(";")
        if len(fields) < 3 or fields[1] != "1":
            return None
        if len(fields) > 4 and fields[4].lstrip("-").isdigit():
            rssi = int(fields[4])
        text = fields[-1]
    if text.lower().startswith("0x"):
        text = text[2:]
    if text.lower().startswith("telegram="):
        text = text.split("=", 1)[1].strip("|")
    frame = bytes.fromhex(text.replace(" ", "").replace("_", ""))
    return DongleFrame(0, b"", frame, rssi)
