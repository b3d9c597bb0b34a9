"""The 60870-5-102 link layer (IEC 60870-5-2, unbalanced, FT1.2): C fields, the master's
requests, the meter's answers, the FCB rule. Pure: bytes in, typed answers out.

C field: bit 6 PRM (1 = from the master); from the master bit 5 FCB and bit 4 FCV, from the
meter bit 5 ACD (class 1 data waiting) and bit 4 DFC (meter busy); bits 0-3 the function.
The link address is two octets, little endian (REE profile).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from drivers import ft12
from drivers.errors import FrameError

ADDRESS_WIDTH: Final = 2
PRM: Final = 0x40
FCB: Final = 0x20
FCV: Final = 0x10
ACD: Final = 0x20
DFC: Final = 0x10
_FUNCTION: Final = 0x0F

# ---- timing and retries (seconds; the session's waits) ---------------------------------------
ANSWER_TIMEOUT_S: Final = 1.5     # first byte of an answer over a direct line
MODEM_ANSWER_TIMEOUT_S: Final = 10.0  # over TCP / a GSM modem (the REE profile allows long ones)
INTER_BYTE_TIMEOUT_S: Final = 0.2   # silence inside one frame: the frame is cut
ATTEMPTS: Final = 3                 # a request is sent at most three times (same FCB)
MAX_POLLS: Final = 2000             # class 2 polls for one application request (a long profile)


class Primary(enum.IntEnum):
    """Functions of master -> meter frames (PRM = 1)."""

    RESET_REMOTE_LINK = 0
    SEND_CONFIRM = 3          # user data, to be confirmed (FCV = 1)
    REQUEST_STATUS = 9        # request status of link
    REQUEST_CLASS_1 = 10      # FCV = 1
    REQUEST_CLASS_2 = 11      # FCV = 1


class Secondary(enum.IntEnum):
    """Functions of meter -> master frames (PRM = 0)."""

    ACK = 0
    NACK = 1                  # message not accepted, link busy
    USER_DATA = 8
    NO_DATA = 9               # NACK: requested data not available
    LINK_STATUS = 11


_WITH_FCV: Final = frozenset({Primary.SEND_CONFIRM, Primary.REQUEST_CLASS_1,
                              Primary.REQUEST_CLASS_2})


def primary_control(function: Primary, fcb: bool = False) -> int:
    """The C field of a master frame: FCV set for the functions that carry an FCB."""
    if function in _WITH_FCV:
        return PRM | FCV | (FCB if fcb else 0) | function
    return PRM | function


@dataclass(frozen=True, slots=True)
class Control:
    """A decoded C field."""

    prm: bool
    bit5: bool      # FCB (master) / ACD (meter)
    bit4: bool      # FCV (master) / DFC (meter)
    function: int

    @classmethod
    def of(cls, value: int) -> Control:
        return cls(bool(value & PRM), bool(value & FCB), bool(value & FCV), value & _FUNCTION)

    def byte(self) -> int:
        return ((PRM if self.prm else 0) | (FCB if self.bit5 else 0) | (FCV if self.bit4 else 0)
                | self.function)


# ---- master requests --------------------------------------------------------------------------

def reset_remote_link(address: int) -> bytes:
    return ft12.build_frame(ft12.ShortFrame(primary_control(Primary.RESET_REMOTE_LINK), address),
                            ADDRESS_WIDTH)


def request_status(address: int) -> bytes:
    return ft12.build_frame(ft12.ShortFrame(primary_control(Primary.REQUEST_STATUS), address),
                            ADDRESS_WIDTH)


def request_class(address: int, klass: int, fcb: bool) -> bytes:
    function = Primary.REQUEST_CLASS_1 if klass == 1 else Primary.REQUEST_CLASS_2
    return ft12.build_frame(ft12.ShortFrame(primary_control(function, fcb), address),
                            ADDRESS_WIDTH)


def send_confirm(address: int, asdu: bytes, fcb: bool) -> bytes:
    """SEND/CONFIRM user data: a long frame whose CI byte is the ASDU's type identification."""
    if len(asdu) < 2:
        raise ValueError("an ASDU has at least a type id and a qualifier")
    frame = ft12.LongFrame(primary_control(Primary.SEND_CONFIRM, fcb), address, asdu[0], asdu[1:])
    return ft12.build_frame(frame, ADDRESS_WIDTH)


# ---- meter answers ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Ack:
    acd: bool = False
    single_char: bool = False   # E5 instead of a fixed frame


@dataclass(frozen=True, slots=True)
class Nack:
    acd: bool = False
    dfc: bool = False


@dataclass(frozen=True, slots=True)
class NoData:
    acd: bool = False
    single_char: bool = False


@dataclass(frozen=True, slots=True)
class LinkStatus:
    acd: bool = False
    dfc: bool = False


@dataclass(frozen=True, slots=True)
class UserData:
    asdu: bytes
    acd: bool = False
    dfc: bool = False


Answer = Ack | Nack | NoData | LinkStatus | UserData


def answer_of(frame: ft12.Frame, address: int | None = None) -> Answer:
    """The meter's answer a frame carries; FrameError for a master frame, an unknown function,
    or (with `address`) another station's frame. E5 answers both "ack" and "no data" (60870-5-2);
    it is an Ack here and the session reads it as no data after a class request."""
    if isinstance(frame, ft12.SingleChar):
        return Ack(single_char=True)
    control = Control.of(frame.control)
    if control.prm:
        raise FrameError(f"C field {frame.control:02X} is a master frame", 1)
    if address is not None and frame.address != address:
        raise FrameError(f"answer from link address {frame.address}, asked {address}", 2)
    if isinstance(frame, ft12.ShortFrame):
        return _short_answer(control)
    if control.function != Secondary.USER_DATA:
        raise FrameError(f"long frame with function {control.function} is no user data", 1)
    data = frame.data if isinstance(frame, ft12.LongFrame) else b""
    return UserData(bytes([frame.ci]) + data, control.bit5, control.bit4)


def _short_answer(control: Control) -> Answer:
    function = control.function
    if function == Secondary.ACK:
        return Ack(acd=control.bit5)
    if function == Secondary.NACK:
        return Nack(control.bit5, control.bit4)
    if function == Secondary.NO_DATA:
        return NoData(acd=control.bit5)
    if function == Secondary.LINK_STATUS:
        return LinkStatus(control.bit5, control.bit4)
    raise FrameError(f"fixed frame with function {function} is no answer", 1)


def build_answer(answer: Answer, address: int) -> bytes:
    """The bytes of a meter's answer (the simulator's half, and the tests')."""
    if isinstance(answer, Ack | NoData) and answer.single_char:
        return bytes([ft12.SINGLE_CHAR])
    if isinstance(answer, UserData):
        byte = Control(False, answer.acd, answer.dfc, Secondary.USER_DATA).byte()
        return ft12.build_frame(ft12.LongFrame(byte, address, answer.asdu[0], answer.asdu[1:])
                                if len(answer.asdu) > 1 else
                                ft12.ControlFrame(byte, address, answer.asdu[0]),
                                ADDRESS_WIDTH)
    if isinstance(answer, Ack):
        control = Control(False, answer.acd, False, Secondary.ACK)
    elif isinstance(answer, NoData):
        control = Control(False, answer.acd, False, Secondary.NO_DATA)
    elif isinstance(answer, Nack):
        control = Control(False, answer.acd, answer.dfc, Secondary.NACK)
    else:
        control = Control(False, answer.acd, answer.dfc, Secondary.LINK_STATUS)
    return ft12.build_frame(ft12.ShortFrame(control.byte(), address), ADDRESS_WIDTH)


@dataclass
class FcbState:
    """The master's frame count bit for one meter. After a reset of the remote link the next
    FCV = 1 frame carries FCB = 1; the bit toggles after each exchange that got a valid answer;
    a repeated frame (no or garbled answer) keeps it, so the meter repeats its last answer
    instead of moving on (60870-5-2 §5.1.2)."""

    _next: bool = True

    @property
    def current(self) -> bool:
        return self._next

    def confirmed(self) -> None:
        self._next = not self._next

    def reset(self) -> None:
        self._next = True


def frame_end(buf: bytes) -> int | None:
    """The transport kit's end finder for a 2-byte-address FT1.2 frame."""
    return ft12.frame_end(buf, ADDRESS_WIDTH)
