"""The wired M-Bus long frame (EN 13757-2): `68 L L 68 C A CI data CS 16`, checked."""

from __future__ import annotations

from typing import Final

from drivers.errors import ChecksumError, FrameError

WIRED_START: Final = 0x68
WIRED_STOP: Final = 0x16


def is_wired_long_frame(frame: bytes) -> bool:
    return len(frame) >= 9 and frame[0] == WIRED_START and frame[3] == WIRED_START


def unwrap_wired_frame(frame: bytes) -> tuple[int, int, bytes]:
    """Check a wired M-Bus long frame `68 L L 68 C A CI ... CS 16`; returns (C, A, CI+data)."""
    length = frame[1]
    if frame[2] != length or len(frame) != length + 6 or frame[-1] != WIRED_STOP:
        raise FrameError("malformed wired M-Bus long frame", 0)
    body = frame[4:4 + length]
    if sum(body) & 0xFF != frame[-2]:
        raise ChecksumError("wired M-Bus checksum mismatch", len(frame) - 2)
    return body[0], body[1], body[2:]
