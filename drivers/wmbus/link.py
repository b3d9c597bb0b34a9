"""wM-Bus data link layer (EN 13757-4): frame formats A/B, CRCs, L C M A fields, wired frames."""

from __future__ import annotations

from typing import NamedTuple

from drivers.errors import ChecksumError, FrameError
from drivers.wmbus.crc import crc_en13757

_FIRST_BLOCK = 10       # L, C, M (2), A (6)
_BLOCK_A = 16           # format A: data bytes per following block
_FIRST_PART_B = 128     # format B: blocks 1+2 end after 128 bytes (CRC included)
_MIN_FRAME = 11         # L C M A and at least a CI field


class LinkHeader(NamedTuple):
    """The link-layer header of a wireless frame."""

    c_field: int
    m_field: bytes      # 2 bytes as sent (little-endian manufacturer code)
    a_field: bytes      # 6 bytes as sent: id (4, BCD LE), version, device type

    @property
    def manufacturer(self) -> str:
        return manufacturer_name(self.m_field)

    @property
    def meter_id(self) -> str:
        return id_text(self.a_field[:4])

    @property
    def version(self) -> int:
        return self.a_field[4]

    @property
    def device_type(self) -> int:
        return self.a_field[5]


def manufacturer_name(m_field: bytes) -> str:
    """Three letters from the 15-bit manufacturer code (EN 13757-3 / FLAG association)."""
    code = int.from_bytes(m_field, "little")
    return "".join(chr(((code >> shift) & 0x1F) + 64) for shift in (10, 5, 0))


def manufacturer_code(name: str) -> bytes:
    letters = name.upper()
    if len(letters) != 3 or not all("A" <= ch <= "Z" for ch in letters):
        raise ValueError(f"manufacturer must be three letters A-Z, got {name!r}")
    code = sum((ord(ch) - 64) << shift for ch, shift in zip(letters, (10, 5, 0), strict=True))
    return code.to_bytes(2, "little")


def id_text(raw: bytes) -> str:
    """Meter id as printed on the meter: the BCD digits, most significant first."""
    return raw[::-1].hex().upper()


def id_bytes(text: str) -> bytes:
    if len(text) != 8:
        raise ValueError(f"meter id must have 8 hex digits, got {text!r}")
    return bytes.fromhex(text)[::-1]


def _strip_format_a(frame: bytes) -> bytes:
    out = bytearray()
    pos = 0
    size = _FIRST_BLOCK
    while pos < len(frame):
        block = frame[pos:pos + size]
        check = frame[pos + size:pos + size + 2]
        if len(check) != 2 or crc_en13757(block) != int.from_bytes(check, "big"):
            raise ChecksumError("format A block CRC mismatch", pos + size)
        out += block
        pos += size + 2
        remaining = frame[0] + 1 - len(out)
        size = min(_BLOCK_A, remaining)
    return bytes(out)


def _format_a_size(length: int) -> int:
    data_after_first = length + 1 - _FIRST_BLOCK
    blocks = 1 + (data_after_first + _BLOCK_A - 1) // _BLOCK_A
    return length + 1 + 2 * blocks


def _strip_format_b(frame: bytes) -> bytes | None:
    """Return the frame without CRCs if it is a valid format B frame, else None."""
    first = min(len(frame), _FIRST_PART_B)
    if crc_en13757(frame[: first - 2]) != int.from_bytes(frame[first - 2:first], "big"):
        return None
    body = frame[: first - 2]
    if len(frame) > _FIRST_PART_B:
        rest = frame[_FIRST_PART_B:]
        if len(rest) < 3 or crc_en13757(rest[:-2]) != int.from_bytes(rest[-2:], "big"):
            return None
        body += rest[:-2]
    return bytes([len(body) - 1]) + body[1:]


def normalize_frame(frame: bytes) -> bytes:
    """Check and strip link-layer CRCs if present; returns `L C M A CI ...` with L = len-1.

    Accepts frames with format A CRCs, format B CRCs, or CRCs already stripped by the dongle.
    """
    if len(frame) < _MIN_FRAME:
        raise FrameError(f"frame too short ({len(frame)} bytes)", 0)
    length = frame[0]
    if len(frame) == length + 1:
        stripped = _strip_format_b(frame)
        return stripped if stripped is not None else frame
    if len(frame) == _format_a_size(length):
        return _strip_format_a(frame)
    if len(frame) > length + 1 and length >= _MIN_FRAME - 1:
        # Trailing bytes after a stripped frame (some dongles append RSSI or padding).
        return frame[: length + 1]
    raise FrameError(f"L field {length} does not match frame length {len(frame)}", 0)


def parse_link_header(frame: bytes) -> LinkHeader:
    # A valid CRC can hide a frame too short for its header once the CRC is taken off.
    if len(frame) < _MIN_FRAME:
        raise FrameError(f"frame of {len(frame)} bytes has no room for L C M A CI", 0)
    return LinkHeader(frame[1], frame[2:4], frame[4:10])
