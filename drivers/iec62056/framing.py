"""IEC 62056-21 / DSMR framing: control bytes, BCC and CRC16, request and command messages.

Pure functions over bytes; nothing here touches a port or the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from drivers.checksums import crc16_a001
from drivers.errors import ChecksumError, FrameError

SOH: Final = 0x01
STX: Final = 0x02
ETX: Final = 0x03
EOT: Final = 0x04
ACK: Final = 0x06
NAK: Final = 0x15
CRLF: Final = b"\r\n"

# The sign-on always happens at 300 baud, 7 data bits, even parity, 1 stop bit.
INITIAL_BAUD: Final = 300

# Baud-rate character of the identification: mode C uses digits, mode B uses letters.
MODE_C_BAUD: Final[dict[str, int]] = {
    "0": 300, "1": 600, "2": 1200, "3": 2400, "4": 4800, "5": 9600, "6": 19200,
}
MODE_B_BAUD: Final[dict[str, int]] = {
    "A": 600, "B": 1200, "C": 2400, "D": 4800, "E": 9600, "F": 19200,
}
BAUD_TO_MODE_C_CHAR: Final[dict[int, str]] = {v: k for k, v in MODE_C_BAUD.items()}

# Mode control character of the acknowledgement/option select message.
MODE_READOUT: Final = "0"
MODE_PROGRAMMING: Final = "1"

# The standard bounds the device address at 32 characters and the identification at 16.
DEVICE_ADDRESS_MAX: Final = 32
IDENT_LINE_MAX: Final = 128  # generous: DSMR meters exceed the 16-character identification


def bcc(data: bytes) -> int:
    """Block check character: XOR of the bytes (caller passes after STX/SOH through ETX)."""
    value = 0
    for byte in data:
        value ^= byte
    return value


def crc16_dsmr(data: bytes) -> int:
    """CRC16 of a DSMR telegram (polynomial 0xA001 reflected, initial 0), over '/' through '!'."""
    return crc16_a001(data, 0)


def build_request(address: str = "") -> bytes:
    """Sign-on request `/?address!CRLF`; an empty address asks whichever meter is there."""
    if len(address) > DEVICE_ADDRESS_MAX or any(c in "/?!\r\n" for c in address):
        raise FrameError(f"invalid IEC 62056-21 device address {address!r}")
    if not address.isascii() or not address.isprintable():
        raise FrameError(f"device address {address!r} must be printable ASCII")
    return b"/?" + address.encode("ascii") + b"!" + CRLF


def build_ack(baud_char: str, mode_char: str = MODE_READOUT, protocol_char: str = "0") -> bytes:
    """Acknowledgement/option select `ACK V Z Y CRLF` (V protocol, Z baud, Y mode)."""
    return bytes([ACK]) + f"{protocol_char}{baud_char}{mode_char}".encode("ascii") + CRLF


def build_command(command: str, data: str | None = None) -> bytes:
    """Programming-mode command `SOH C D [STX data] ETX BCC` (P1, R1, R5, B0, ...)."""
    if len(command) != 2 or not command.isalnum():
        raise FrameError(f"invalid command identifier {command!r}")
    body = command.encode("ascii")
    if data is not None:
        body += bytes([STX]) + data.encode("ascii")
    body += bytes([ETX])
    return bytes([SOH]) + body + bytes([bcc(body)])


@dataclass(frozen=True, slots=True)
class Identification:
    """The meter's identification message `/XXXZ[\\W]ident`."""

    manufacturer: str
    baud_char: str
    enhanced: str | None  # the character after a backslash ("2": HDLC mode E capable)
    model: str

    @property
    def mode_c_baud(self) -> int | None:
        return MODE_C_BAUD.get(self.baud_char)

    @property
    def mode_b_baud(self) -> int | None:
        return MODE_B_BAUD.get(self.baud_char)

    @property
    def fast_reaction(self) -> bool:
        """A lowercase third manufacturer letter announces a 20 ms minimum reaction time."""
        return self.manufacturer[2:3].islower()

    def to_bytes(self) -> bytes:
        enhanced = "" if self.enhanced is None else "\\" + self.enhanced
        text = f"/{self.manufacturer}{self.baud_char}{enhanced}{self.model}"
        return text.encode("latin-1") + CRLF


def parse_identification(line: bytes, offset: int = 0) -> Identification:
    """Parse one identification line (with or without its line end)."""
    text = line.rstrip(b"\r\n").decode("latin-1")
    if not text.startswith("/") or len(text) < 5:
        raise FrameError("identification must be '/XXXZ...'", offset)
    if len(text) > IDENT_LINE_MAX:
        raise FrameError(f"identification longer than {IDENT_LINE_MAX} characters", offset)
    manufacturer = text[1:4]
    if not all(c.isascii() and c.isalpha() for c in manufacturer):
        raise FrameError(f"manufacturer id {manufacturer!r} is not three letters", offset + 1)
    rest = text[5:]
    enhanced = None
    if rest.startswith("\\") and len(rest) >= 2:
        enhanced, rest = rest[1], rest[2:]
    return Identification(manufacturer, text[4], enhanced, rest)


def frame_command(frame: bytes) -> tuple[str, str | None]:
    """Split a received `SOH C D [STX data] ETX BCC` message (e.g. P0) into command and data."""
    if len(frame) < 5 or frame[0] != SOH or frame[-2] != ETX:
        raise FrameError("not a SOH ... ETX BCC command message", 0)
    if bcc(frame[1:-1]) != frame[-1]:
        raise ChecksumError(f"command BCC 0x{frame[-1]:02X} != 0x{bcc(frame[1:-1]):02X}")
    command = frame[1:3].decode("latin-1")
    if frame[3] == STX:
        return command, frame[4:-2].decode("latin-1")
    return command, None


def check_data_frame(frame: bytes) -> bytes:
    """Verify `STX data ETX BCC` and return the data between STX and ETX."""
    if len(frame) < 3 or frame[0] != STX or frame[-2] != ETX:
        raise FrameError("not a STX ... ETX BCC data message", 0)
    expected = bcc(frame[1:-1])
    if expected != frame[-1]:
        raise ChecksumError(
            f"BCC 0x{frame[-1]:02X} does not match computed 0x{expected:02X}", len(frame) - 1
        )
    return frame[1:-2]


def build_data_frame(data: bytes) -> bytes:
    """`STX data ETX BCC` as a meter sends it."""
    body = data + bytes([ETX])
    return bytes([STX]) + body + bytes([bcc(body)])
