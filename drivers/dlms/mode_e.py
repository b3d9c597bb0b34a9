"""IEC 62056-21 mode E on an optical head: the sign-on at 300 baud 7E1, an identification that
offers HDLC (the enhanced identification `\\2`), the option select `ACK 2 Z 2` (protocol HDLC,
baud Z, binary mode), then HDLC at the switched baud, 8N1 (IEC 62056-21 Annex E).

`sign_on(stream)` does the text part with the IEC 62056-21 framing of drivers/iec62056 and
leaves the stream at the meter's baud; the simulated meter's side is `sim.ModeEFront`.
"""

from __future__ import annotations

from typing import Final

from drivers.errors import DeviceRejected, FrameError
from drivers.iec62056.framing import (
    INITIAL_BAUD,
    MODE_C_BAUD,
    Identification,
    build_ack,
    build_request,
    parse_identification,
)
from drivers.transport.stream import ByteStream, LineSettings

HDLC_PROTOCOL: Final = "2"  # V: protocol control character, HDLC
BINARY_MODE: Final = "2"  # Y: mode control character, binary (HDLC)
SIGN_ON_TIMEOUT_S: Final = 1.5  # the meter's reaction time at 300 baud is at most 1.5 s
SIGN_ON_INTER_BYTE_S: Final = 0.5
SIGN_ON_LINE: Final = LineSettings(INITIAL_BAUD, 7, "E", 1)
MAX_IDENT_BYTES: Final = 128


def _line_end(buffer: bytes) -> int | None:
    end = buffer.find(b"\n")
    if end < 0 and len(buffer) > MAX_IDENT_BYTES:
        raise FrameError("identification line runs past 128 bytes", 0)
    return None if end < 0 else end + 1


async def sign_on(stream: ByteStream, address: str = "") -> tuple[Identification, int]:
    """The identification and the baud the meter switched to; the stream is left at it."""
    stream.set_line(SIGN_ON_LINE)
    stream.discard_input()
    await stream.write(build_request(address))
    raw = await stream.read_message(_line_end, SIGN_ON_TIMEOUT_S, SIGN_ON_INTER_BYTE_S,
                                    "identification")
    ident = parse_identification(raw[raw.find(b"/"):] if b"/" in raw else raw)
    if ident.enhanced != HDLC_PROTOCOL:
        raise DeviceRejected(f"{stream.name}: the meter does not offer mode E (HDLC); its "
                             f"identification is {ident.manufacturer} {ident.model}")
    baud = MODE_C_BAUD.get(ident.baud_char)
    if baud is None:
        raise FrameError(f"baud character {ident.baud_char!r} is not a mode C/E rate", 4)
    await stream.write(build_ack(ident.baud_char, BINARY_MODE, HDLC_PROTOCOL))
    stream.set_line(LineSettings(baud, 8, "N", 1))
    return ident, baud
