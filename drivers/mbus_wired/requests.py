"""Master -> slave messages of wired M-Bus as frozen dataclasses; build and parse them.

`parse_request(build_request(x)) == x` for every message (the simulator parses what the master
builds). SND_UD carries a CI: 0x52 select by secondary address, 0x50 application reset (with an
optional subcode, "select data"), 0xB8-0xBF switch baud, 0x51 data: set clock (a type F
date-time record `04 6D`) or set the primary address (`01 7A`); other data stays generic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from drivers import ft12
from drivers.errors import FrameError
from drivers.mbus_wired import link
from drivers.mbus_wired.address import SECONDARY_SIZE, SELECTED, SelectPattern, decode_pattern

CI_DATA: Final = 0x51
CI_SELECT: Final = 0x52
CI_RESET: Final = 0x50
CI_BAUD_FIRST: Final = 0xB8   # 0xB8 + n switches to BAUD_RATES[n]
CI_BAUD_LAST: Final = 0xBF
CLOCK_RECORD: Final = bytes([0x04, 0x6D])     # 32-bit, VIF date and time: type F
ADDRESS_RECORD: Final = bytes([0x01, 0x7A])   # 8-bit, VIF bus address
_YEAR_BASE: Final = 2000


@dataclass(frozen=True, slots=True)
class SndNke:
    address: int


@dataclass(frozen=True, slots=True)
class ReqUd2:
    address: int
    fcb: bool


@dataclass(frozen=True, slots=True)
class SelectSecondary:
    pattern: SelectPattern
    fcb: bool


@dataclass(frozen=True, slots=True)
class ApplicationReset:
    address: int
    fcb: bool
    subcode: int | None = None   # "select data" / reset kind (EN 13757-3 table 13)


@dataclass(frozen=True, slots=True)
class SwitchBaud:
    address: int
    fcb: bool
    baud: int

    def __post_init__(self) -> None:
        if self.baud not in link.BAUD_RATES:
            raise ValueError(f"baud {self.baud} is not one of {link.BAUD_RATES}")


@dataclass(frozen=True, slots=True)
class SetClock:
    """Set the meter's clock: a type F record, minutes resolution, the meter's local time."""

    address: int
    fcb: bool
    moment: datetime

    def __post_init__(self) -> None:
        if self.moment.second or self.moment.microsecond or self.moment.tzinfo is not None:
            raise ValueError("type F holds whole minutes of a naive (meter local) time")
        if not _YEAR_BASE <= self.moment.year <= _YEAR_BASE + 99:
            raise ValueError(f"year {self.moment.year} is outside type F's 2000-2099")


@dataclass(frozen=True, slots=True)
class SetPrimaryAddress:
    address: int
    fcb: bool
    new_address: int


@dataclass(frozen=True, slots=True)
class SndUd:
    """Any other SND_UD (data the gateway does not model)."""

    address: int
    fcb: bool
    ci: int
    data: bytes = b""


Request = (SndNke | ReqUd2 | SelectSecondary | ApplicationReset | SwitchBaud | SetClock
           | SetPrimaryAddress | SndUd)


def encode_type_f(moment: datetime) -> bytes:
    """EN 13757-3 type F: minute, hour, day + year low bits, month + year high bits."""
    year = moment.year - _YEAR_BASE
    return bytes([moment.minute, moment.hour, moment.day | (year & 0x07) << 5,
                  moment.month | (year >> 3) << 4])


def decode_type_f(raw: bytes, offset: int) -> datetime:
    """A type F date-time that must be valid (IV bit clear, a real date); FrameError else."""
    if raw[0] & 0x80:
        raise FrameError("clock record has the time-invalid bit set", offset)
    year = (raw[2] >> 5) | (raw[3] >> 4) << 3
    try:
        moment = datetime(_YEAR_BASE + year, raw[3] & 0x0F, raw[2] & 0x1F, raw[1] & 0x1F,
                          raw[0] & 0x3F)
    except ValueError as exc:
        raise FrameError(f"clock record {raw.hex()} is no date and time", offset) from exc
    if raw[0] & 0x40 or raw[1] & 0xE0:   # reserved / summer-time bits: not what we build
        raise FrameError(f"clock record {raw.hex()} sets bits we do not send", offset)
    return moment


def _snd_ud(address: int, fcb: bool, ci: int, data: bytes = b"") -> ft12.Frame:
    control = link.master_control(link.SND_UD, fcb)
    if data:
        return ft12.LongFrame(control, address, ci, data)
    return ft12.ControlFrame(control, address, ci)


def to_frame(request: Request) -> ft12.Frame:
    """The FT1.2 frame of a request."""
    match request:
        case SndNke(address):
            return ft12.ShortFrame(link.SND_NKE, address)
        case ReqUd2(address, fcb):
            return ft12.ShortFrame(link.master_control(link.REQ_UD2, fcb), address)
        case SelectSecondary(pattern, fcb):
            return _snd_ud(SELECTED, fcb, CI_SELECT, pattern.encode())
        case ApplicationReset(address, fcb, subcode):
            return _snd_ud(address, fcb, CI_RESET, b"" if subcode is None else bytes([subcode]))
        case SwitchBaud(address, fcb, baud):
            return _snd_ud(address, fcb, CI_BAUD_FIRST + link.BAUD_RATES.index(baud))
        case SetClock(address, fcb, moment):
            return _snd_ud(address, fcb, CI_DATA, CLOCK_RECORD + encode_type_f(moment))
        case SetPrimaryAddress(address, fcb, new_address):
            return _snd_ud(address, fcb, CI_DATA, ADDRESS_RECORD + bytes([new_address]))
        case SndUd(address, fcb, ci, data):
            return _snd_ud(address, fcb, ci, data)
    raise TypeError(f"not a request: {request!r}")


def build_request(request: Request) -> bytes:
    return ft12.build_frame(to_frame(request))


def parse_request(data: bytes) -> Request:
    """The request `data` holds; FrameError for a frame that is none (or not from a master)."""
    frame = ft12.parse_frame(data)
    if isinstance(frame, ft12.SingleChar):
        raise FrameError("E5 is an answer, not a request", 0)
    link.check_request_control(frame.control)
    fcb = bool(frame.control & link.FCB)
    function = frame.control & ~link.FCB
    if isinstance(frame, ft12.ShortFrame):
        if frame.control == link.SND_NKE:
            return SndNke(frame.address)
        if function == link.REQ_UD2:
            return ReqUd2(frame.address, fcb)
        raise FrameError(f"short frame C field {frame.control:02X} is not modelled", 1)
    if function != link.SND_UD:
        raise FrameError(f"long frame C field {frame.control:02X} is no SND_UD", 4)
    data_bytes = frame.data if isinstance(frame, ft12.LongFrame) else b""
    return _parse_snd_ud(frame.address, fcb, frame.ci, data_bytes)


def _parse_snd_ud(address: int, fcb: bool, ci: int, data: bytes) -> Request:
    if ci == CI_SELECT and address == SELECTED and len(data) == SECONDARY_SIZE:
        return SelectSecondary(decode_pattern(data, 7), fcb)
    if ci == CI_RESET and len(data) <= 1:
        return ApplicationReset(address, fcb, data[0] if data else None)
    if CI_BAUD_FIRST <= ci <= CI_BAUD_LAST and not data:
        return SwitchBaud(address, fcb, link.BAUD_RATES[ci - CI_BAUD_FIRST])
    if ci == CI_DATA and len(data) == 6 and data[:2] == CLOCK_RECORD:
        return SetClock(address, fcb, decode_type_f(data[2:], 9))
    if ci == CI_DATA and len(data) == 3 and data[:2] == ADDRESS_RECORD:
        return SetPrimaryAddress(address, fcb, data[2])
    return SndUd(address, fcb, ci, data)
