"""Slave -> master messages of wired M-Bus: E5, RSP_UD (EN 13757-3 records), application errors.

An RSP_UD carries CI 0x72 (12-byte fixed header: id, manufacturer, version, medium, access
number, status, signature), 0x7A (4-byte short header) or 0x78 (no header), then data records
decoded by the shared application layer (drivers/mbus). Decoding is strict here: a wired
answer the records cannot be walked to the end of (truncated record, more than 10 DIFE / VIFE,
a plain-text VIF running past the frame) is a FrameError naming the offset, not a telegram
with an "unparsed" tail; the meter is asked again instead. A record whose DIF is 0x1F says
more records follow in the next telegram (`more_follow`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Final

from drivers import ft12
from drivers.errors import FrameError
from drivers.mbus.records import Record, RecordDecoder
from drivers.mbus_wired import link
from drivers.mbus_wired.address import SecondaryAddress, manufacturer_text

CI_RSP_LONG: Final = 0x72
CI_RSP_SHORT: Final = 0x7A
CI_RSP_NONE: Final = 0x78
CI_APP_ERROR: Final = 0x70
CI_FIXED: Final = frozenset((0x73, 0x77))   # the old fixed data structure (EN 1434-3)
CI_MSB_FIRST: Final = frozenset((0x76,))    # mode 2: multi-byte values most significant first
LONG_HEADER: Final = 12
SHORT_HEADER: Final = 4
MORE_RECORDS_DIF: Final = 0x1F
_FRAME_DATA_OFFSET: Final = 7   # 68 L L 68 C A CI: where the header starts in the frame

# EN 13757-3 table "application errors" (CI 0x70 status byte); the text is the usual wording.
APPLICATION_ERRORS: Final = {
    0: "Unspecified error", 1: "Unimplemented CI-Field", 2: "Buffer too long, truncated",
    3: "Too many records", 4: "Premature end of record", 5: "More than 10 DIFE's",
    6: "More than 10 VIFE's", 7: "Reserved", 8: "Application too busy for handling readout "
    "request", 9: "Too many readouts",
}
_DECODER: Final = RecordDecoder()


@dataclass(frozen=True, slots=True)
class Ack:
    """The single character E5."""


@dataclass(frozen=True, slots=True)
class FixedHeader:
    """The CI 0x72 header. `id` is the 8 BCD digits as printed (hex digits if a meter sends
    nibbles A-F); `manufacturer` the 2-byte code."""

    id: str
    manufacturer: int
    version: int
    medium: int
    access_number: int
    status: int
    signature: int

    @property
    def manufacturer_text(self) -> str:
        return manufacturer_text(self.manufacturer)

    def secondary(self) -> SecondaryAddress | None:
        """The meter's secondary address; None when its id is not BCD (no search finds it)."""
        if not self.id.isdigit():
            return None
        return SecondaryAddress(self.id, self.manufacturer, self.version, self.medium)

    def encode(self) -> bytes:
        return (bytes.fromhex(self.id)[::-1] + self.manufacturer.to_bytes(2, "little")
                + bytes([self.version, self.medium, self.access_number, self.status])
                + self.signature.to_bytes(2, "little"))


@dataclass(frozen=True, slots=True)
class ShortHeader:
    access_number: int
    status: int
    signature: int

    def encode(self) -> bytes:
        return bytes([self.access_number, self.status]) + self.signature.to_bytes(2, "little")


@dataclass(frozen=True)
class RspUd:
    """One RSP_UD telegram: link fields, header and the record bytes (decoded on demand with
    the shared plan cache; `parse_answer` has already checked they decode to the end)."""

    address: int
    control: int
    ci: int
    header: FixedHeader | ShortHeader | None
    payload: bytes

    @cached_property
    def records(self) -> tuple[Record, ...]:
        return tuple(_DECODER.decode(self.payload))

    @cached_property
    def more_follow(self) -> bool:
        """DIF 0x1F ends the records: the meter has another telegram (FCB toggled to get it)."""
        layout = _DECODER.layout(self.payload)
        return bool(layout) and layout[-1][0][:1] == bytes([MORE_RECORDS_DIF])


@dataclass(frozen=True, slots=True)
class AppError:
    """CI 0x70: the meter refuses with an application error code (None: no code byte)."""

    address: int
    control: int
    code: int | None

    @property
    def text(self) -> str:
        return APPLICATION_ERRORS.get(0 if self.code is None else self.code,
                                      f"application error {self.code}")


Answer = Ack | RspUd | AppError


class ApplicationErrorFrame(FrameError):
    """An answer that is an application error (CI 0x70), where data was asked for."""

    def __init__(self, error: AppError) -> None:
        self.error = error
        super().__init__(error.text, _FRAME_DATA_OFFSET - 1)


def _fixed_header(data: bytes) -> FixedHeader:
    return FixedHeader(data[:4][::-1].hex().upper(), int.from_bytes(data[4:6], "little"),
                       data[6], data[7], data[8], data[9], int.from_bytes(data[10:12], "little"))


def _header(ci: int, data: bytes) -> tuple[FixedHeader | ShortHeader | None, bytes]:
    if ci == CI_RSP_LONG:
        if len(data) < LONG_HEADER:
            raise FrameError(f"RSP_UD of {len(data)} bytes has no room for the 12-byte header",
                             _FRAME_DATA_OFFSET + len(data))
        return _fixed_header(data), data[LONG_HEADER:]
    if ci == CI_RSP_SHORT:
        if len(data) < SHORT_HEADER:
            raise FrameError("RSP_UD has no room for the 4-byte short header",
                             _FRAME_DATA_OFFSET + len(data))
        short = ShortHeader(data[0], data[1], int.from_bytes(data[2:4], "little"))
        return short, data[SHORT_HEADER:]
    if ci == CI_RSP_NONE:
        return None, data
    if ci in CI_FIXED:
        raise FrameError(f"CI {ci:02X}: the fixed data structure is not supported",
                         _FRAME_DATA_OFFSET - 1)
    if ci in CI_MSB_FIRST:
        raise FrameError(f"CI {ci:02X}: data most significant byte first is not supported",
                         _FRAME_DATA_OFFSET - 1)
    raise FrameError(f"CI {ci:02X} is no M-Bus answer", _FRAME_DATA_OFFSET - 1)


def _check_records(payload: bytes, start: int) -> None:
    """FrameError unless the shared decoder walks every record to the end of the payload."""
    try:
        records = _DECODER.decode(payload)
    except FrameError as exc:
        raise FrameError(f"records: {exc}", start) from exc
    for record in records:
        if record.kind == "unparsed":   # the walk stopped early; its offset is a modifier
            where = int(record.modifiers[0].removeprefix("error_at_"))
            raise FrameError(f"record at payload byte {where} cannot be decoded",
                             start + where)


def answer_of(frame: ft12.Frame, *, strict: bool = True) -> Answer:
    """The answer an FT1.2 frame is; FrameError for one that is no slave answer. With
    `strict=False` records the decoder cannot walk are kept as one "unparsed" raw record (as
    wireless M-Bus does) instead of refusing the telegram."""
    if isinstance(frame, ft12.SingleChar):
        return Ack()
    if isinstance(frame, ft12.ShortFrame):
        raise FrameError(f"short frame (C {frame.control:02X}) is no slave answer", 0)
    if not link.is_slave_control(frame.control):
        raise FrameError(f"C field {frame.control:02X} is no RSP_UD", 4)
    data = frame.data if isinstance(frame, ft12.LongFrame) else b""
    if frame.ci == CI_APP_ERROR:
        if len(data) > 1:
            raise FrameError("application error with more than one status byte", 8)
        return AppError(frame.address, frame.control, data[0] if data else None)
    header, payload = _header(frame.ci, data)
    if strict:
        _check_records(payload, len(data) - len(payload) + _FRAME_DATA_OFFSET)
    return RspUd(frame.address, frame.control, frame.ci, header, payload)


def parse_answer(data: bytes, *, strict: bool = True) -> Answer:
    """The answer `data` holds exactly (E5, RSP_UD or application error); FrameError else."""
    return answer_of(ft12.parse_frame(data), strict=strict)


def decode_rsp_ud(data: bytes, *, strict: bool = True) -> RspUd:
    """The RSP_UD `data` holds; FrameError for anything else (ApplicationErrorFrame for CI
    0x70, with the standard's wording of its code)."""
    answer = parse_answer(data, strict=strict)
    if isinstance(answer, AppError):
        raise ApplicationErrorFrame(answer)
    if isinstance(answer, Ack):
        raise FrameError("E5 where an RSP_UD was expected", 0)
    return answer


def build_answer(answer: Answer) -> bytes:
    """The bytes of an answer (the simulator sends these)."""
    if isinstance(answer, Ack):
        return bytes([ft12.SINGLE_CHAR])
    if isinstance(answer, AppError):
        data = b"" if answer.code is None else bytes([answer.code])
        frame: ft12.Frame = (ft12.LongFrame(answer.control, answer.address, CI_APP_ERROR, data)
                             if data else ft12.ControlFrame(answer.control, answer.address,
                                                            CI_APP_ERROR))
        return ft12.build_frame(frame)
    header = b"" if answer.header is None else answer.header.encode()
    body = header + answer.payload
    if body:
        return ft12.build_frame(ft12.LongFrame(answer.control, answer.address, answer.ci, body))
    return ft12.build_frame(ft12.ControlFrame(answer.control, answer.address, answer.ci))
