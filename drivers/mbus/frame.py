"""The wired M-Bus long frame (EN 13757-2): `68 L L 68 C A CI data CS 16`, checked by drivers.ft12.

Wireless M-Bus (drivers/wmbus/telegram.py) decodes wired long frames handed to it too; the
check itself (lengths, checksum, stop byte) lives once, in the FT1.2 framing wired M-Bus uses.
"""

from __future__ import annotations

from typing import Final

from drivers import ft12
from drivers.errors import FrameError

WIRED_START: Final = ft12.LONG_START
WIRED_STOP: Final = ft12.STOP
_MIN_LONG_FRAME: Final = 9   # 68 L L 68 C A CI CS 16


def is_wired_long_frame(frame: bytes) -> bool:
    return len(frame) >= _MIN_LONG_FRAME and frame[0] == WIRED_START and frame[3] == WIRED_START


def unwrap_wired_frame(frame: bytes) -> tuple[int, int, bytes]:
    """Check a wired M-Bus long frame `68 L L 68 C A CI ... CS 16`; returns (C, A, CI+data).

    Raises FrameError (ChecksumError for a wrong checksum) for anything but one long frame."""
    parsed = ft12.parse_frame(frame)
    if isinstance(parsed, ft12.LongFrame):
        return parsed.control, parsed.address, bytes([parsed.ci]) + parsed.data
    if isinstance(parsed, ft12.ControlFrame):
        return parsed.control, parsed.address, bytes([parsed.ci])
    raise FrameError("not a wired M-Bus long frame", 0)
