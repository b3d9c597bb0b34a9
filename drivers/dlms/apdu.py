"""xDLMS service APDUs under logical-name referencing (IEC 62056-5-3 9.5, A-XDR coded): GET,
SET and ACTION requests and responses (normal, block transfer, with-list), data-notification
(push), exception-response and confirmed-service-error.

Each is a frozen dataclass with `build()`; `parse_service(raw)` picks the class by tag and
type, so `parse_service(x.build()) == x`. A meter's refusal decodes to a value here
(`GetResponse.result`), and `raise_for_result` turns it into `ServiceError` with the
standard's name for the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Union

from drivers.dlms.axdr import Data, Reader, encode_data, encode_length, read_data
from drivers.dlms.errors import ServiceError
from drivers.dlms.notification import (
    CONFIRMED_SERVICE_ERROR,
    DATA_NOTIFICATION,
    EXCEPTION_RESPONSE,
    ConfirmedServiceError,
    DataNotification,
    ExceptionResponse,
)
from drivers.errors import FrameError

GET_REQUEST: Final = 0xC0
SET_REQUEST: Final = 0xC1
EVENT_NOTIFICATION: Final = 0xC2
ACTION_REQUEST: Final = 0xC3
GET_RESPONSE: Final = 0xC4
SET_RESPONSE: Final = 0xC5
ACTION_RESPONSE: Final = 0xC7

NORMAL: Final = 1
NEXT: Final = 2  # GET request next / GET response with data block
WITH_LIST: Final = 3
SUCCESS: Final = 0
DEFAULT_INVOKE: Final = 0xC1  # invoke id 1, confirmed, high priority

DATA_ACCESS_RESULTS: Final = {
    0: "success", 1: "hardware_fault", 2: "temporary_failure", 3: "read_write_denied",
    4: "object_undefined", 9: "object_class_inconsistent", 11: "object_unavailable",
    12: "type_unmatched", 13: "scope_of_access_violated", 14: "data_block_unavailable",
    15: "long_operation_aborted", 16: "no_long_operation_in_progress",
    17: "long_set_aborted", 18: "no_long_set_in_progress", 19: "data_block_number_invalid",
    250: "other_reason"}


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A COSEM attribute or method: class id, logical name (6 bytes), attribute / method id."""

    class_id: int
    instance: bytes
    index: int

    def encode(self) -> bytes:
        if len(self.instance) != 6:
            raise ValueError("a logical name is 6 bytes")
        return (self.class_id.to_bytes(2, "big") + self.instance
                + self.index.to_bytes(1, "big", signed=True))


@dataclass(frozen=True, slots=True)
class Access:
    """Selective access: selector (1 range, 2 entry) and its parameters."""

    selector: int
    parameters: Data


def _descriptor(reader: Reader) -> Descriptor:
    raw = reader.take(9, "attribute descriptor")
    return Descriptor(int.from_bytes(raw[0:2], "big"), raw[2:8],
                      int.from_bytes(raw[8:9], "big", signed=True))


def _access(reader: Reader) -> Access | None:
    if not reader.byte("access selection flag"):
        return None
    return Access(reader.byte("access selector"), read_data(reader))


def _encode_access(access: Access | None) -> bytes:
    if access is None:
        return b"\x00"
    return bytes([1, access.selector]) + encode_data(access.parameters)


def _boolean(reader: Reader, what: str) -> bool:
    return reader.byte(what) != 0


def _u32(reader: Reader, what: str) -> int:
    return int.from_bytes(reader.take(4, what), "big")


# ---- GET ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class GetRequest:
    """normal (one attribute), next (block number) or with-list (several attributes)."""

    kind: int = NORMAL
    invoke: int = DEFAULT_INVOKE
    attributes: tuple[tuple[Descriptor, Access | None], ...] = ()
    block_number: int = 0

    def build(self) -> bytes:
        head = bytes([GET_REQUEST, self.kind, self.invoke])
        if self.kind == NEXT:
            return head + self.block_number.to_bytes(4, "big")
        items = b"".join(d.encode() + _encode_access(a) for d, a in self.attributes)
        if self.kind == NORMAL:
            if len(self.attributes) != 1:
                raise ValueError("a normal GET names one attribute")
            return head + items
        return head + encode_length(len(self.attributes)) + items


@dataclass(frozen=True, slots=True)
class GetResponse:
    """normal: `results` holds one Data or data-access-result (int); with data block:
    `last_block`, `block_number` and `raw_data` (or an int result); with-list: several."""

    kind: int = NORMAL
    invoke: int = DEFAULT_INVOKE
    results: tuple[Data | int, ...] = ()
    last_block: bool = True
    block_number: int = 0
    raw_data: bytes | int = b""

    def build(self) -> bytes:
        head = bytes([GET_RESPONSE, self.kind, self.invoke])
        if self.kind == NEXT:
            block = bytes([1 if self.last_block else 0]) + self.block_number.to_bytes(4, "big")
            if isinstance(self.raw_data, int):
                return head + block + bytes([1, self.raw_data])
            return head + block + b"\x00" + encode_length(len(self.raw_data)) + self.raw_data
        items = b"".join(_encode_result(r) for r in self.results)
        return head + (items if self.kind == NORMAL else encode_length(len(self.results))
                       + items)


def _encode_result(result: Data | int) -> bytes:
    return bytes([1, result]) if isinstance(result, int) else b"\x00" + encode_data(result)


def _read_result(reader: Reader) -> Data | int:
    choice = reader.byte("Get-Data-Result choice")
    if choice == 0:
        return read_data(reader)
    if choice == 1:
        return reader.byte("data-access-result")
    raise FrameError(f"Get-Data-Result choice {choice}", reader.pos - 1)


def _parse_get_request(reader: Reader, kind: int, invoke: int) -> GetRequest:
    if kind == NEXT:
        return GetRequest(kind, invoke, (), _u32(reader, "block number"))
    count = 1 if kind == NORMAL else reader.length("attribute count")
    if count * 10 > reader.left:
        raise FrameError(f"{count} attributes in {reader.left} bytes", reader.pos)
    attrs = tuple((_descriptor(reader), _access(reader)) for _ in range(count))
    return GetRequest(kind, invoke, attrs)


def _parse_get_response(reader: Reader, kind: int, invoke: int) -> GetResponse:
    if kind == NEXT:
        last = _boolean(reader, "last block")
        number = _u32(reader, "block number")
        choice = reader.byte("DataBlock-G result choice")
        if choice not in (0, 1):
            raise FrameError(f"DataBlock-G result choice {choice}", reader.pos - 1)
        raw: bytes | int = reader.sized("raw data") if choice == 0 else reader.byte("result")
        return GetResponse(kind, invoke, (), last, number, raw)
    count = 1 if kind == NORMAL else reader.length("result count")
    if count * 2 > reader.left:
        raise FrameError(f"{count} results in {reader.left} bytes", reader.pos)
    return GetResponse(kind, invoke, tuple(_read_result(reader) for _ in range(count)))


# ---- SET ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SetRequest:
    """normal (1) or with-list (4); block transfer of SET is not offered (a meter's SET
    values are small)."""

    kind: int = NORMAL
    invoke: int = DEFAULT_INVOKE
    attributes: tuple[tuple[Descriptor, Access | None], ...] = ()
    values: tuple[Data, ...] = ()

    def build(self) -> bytes:
        head = bytes([SET_REQUEST, self.kind, self.invoke])
        items = b"".join(d.encode() + _encode_access(a) for d, a in self.attributes)
        values = b"".join(encode_data(v) for v in self.values)
        if self.kind == NORMAL:
            return head + items + values
        return (head + encode_length(len(self.attributes)) + items
                + encode_length(len(self.values)) + values)


SET_WITH_LIST: Final = 4


@dataclass(frozen=True, slots=True)
class SetResponse:
    """normal (1): one result; with-list (5): several results."""

    kind: int = NORMAL
    invoke: int = DEFAULT_INVOKE
    results: tuple[int, ...] = (SUCCESS,)

    def build(self) -> bytes:
        head = bytes([SET_RESPONSE, self.kind, self.invoke])
        if self.kind == NORMAL:
            return head + bytes(self.results[:1])
        return head + encode_length(len(self.results)) + bytes(self.results)


SET_RESPONSE_WITH_LIST: Final = 5


def _parse_set_request(reader: Reader, kind: int, invoke: int) -> SetRequest:
    if kind == NORMAL:
        attr = (_descriptor(reader), _access(reader))
        return SetRequest(kind, invoke, (attr,), (read_data(reader),))
    if kind != SET_WITH_LIST:
        raise FrameError(f"SET request type {kind} (block transfer) is not supported", 1)
    count = reader.length("attribute count")
    if count * 10 > reader.left:
        raise FrameError(f"{count} attributes in {reader.left} bytes", reader.pos)
    attrs = tuple((_descriptor(reader), _access(reader)) for _ in range(count))
    values = reader.length("value count")
    if values != count:
        raise FrameError(f"{count} attributes but {values} values", reader.pos)
    return SetRequest(kind, invoke, attrs, tuple(read_data(reader) for _ in range(values)))


def _parse_set_response(reader: Reader, kind: int, invoke: int) -> SetResponse:
    if kind == NORMAL:
        return SetResponse(kind, invoke, (reader.byte("set result"),))
    if kind != SET_RESPONSE_WITH_LIST:
        raise FrameError(f"SET response type {kind} (block transfer) is not supported", 1)
    count = reader.length("result count")
    return SetResponse(kind, invoke, tuple(reader.take(count, "set results")))


# ---- ACTION ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ActionRequest:
    """normal: one method with optional parameters (HLS reply_to_HLS_authentication,
    disconnect control's remote_disconnect / remote_reconnect)."""

    method: Descriptor
    parameters: Data | None = None
    invoke: int = DEFAULT_INVOKE

    def build(self) -> bytes:
        params = b"\x00" if self.parameters is None else b"\x01" + encode_data(self.parameters)
        return bytes([ACTION_REQUEST, NORMAL, self.invoke]) + self.method.encode() + params


@dataclass(frozen=True, slots=True)
class ActionResponse:
    """normal: the action result and the optional return parameters (Data or a
    data-access-result)."""

    result: int = SUCCESS
    returned: Data | int | None = None
    invoke: int = DEFAULT_INVOKE

    def build(self) -> bytes:
        tail = b"\x00" if self.returned is None else b"\x01" + _encode_result(self.returned)
        return bytes([ACTION_RESPONSE, NORMAL, self.invoke, self.result]) + tail


def _parse_action_request(reader: Reader, kind: int, invoke: int) -> ActionRequest:
    if kind != NORMAL:
        raise FrameError(f"ACTION request type {kind} (block / list) is not supported", 1)
    method = _descriptor(reader)
    params = read_data(reader) if reader.byte("parameters flag") else None
    return ActionRequest(method, params, invoke)


def _parse_action_response(reader: Reader, kind: int, invoke: int) -> ActionResponse:
    if kind != NORMAL:
        raise FrameError(f"ACTION response type {kind} (block / list) is not supported", 1)
    result = reader.byte("action result")
    returned = _read_result(reader) if reader.byte("return parameters flag") else None
    return ActionResponse(result, returned, invoke)


Service = Union["GetRequest", "GetResponse", "SetRequest", "SetResponse",
                "ActionRequest", "ActionResponse", "DataNotification", "ExceptionResponse",
                "ConfirmedServiceError"]

_TYPED: Final[dict[int, Callable[[Reader, int, int], Service]]] = {
    GET_REQUEST: _parse_get_request, GET_RESPONSE: _parse_get_response,
                 SET_REQUEST: _parse_set_request, SET_RESPONSE: _parse_set_response,
                 ACTION_REQUEST: _parse_action_request, ACTION_RESPONSE: _parse_action_response}
_KINDS: Final = {GET_REQUEST: (NORMAL, NEXT, WITH_LIST), GET_RESPONSE: (NORMAL, NEXT, WITH_LIST),
                 SET_REQUEST: (NORMAL, 2, 3, SET_WITH_LIST, 5),
                 SET_RESPONSE: (NORMAL, 2, 3, 4, SET_RESPONSE_WITH_LIST),
                 ACTION_REQUEST: (1, 2, 3, 4, 5, 6), ACTION_RESPONSE: (1, 2, 3, 4)}
SERVICE_NAMES: Final = {GET_REQUEST: "get-request", GET_RESPONSE: "get-response",
                        SET_REQUEST: "set-request", SET_RESPONSE: "set-response",
                        ACTION_REQUEST: "action-request", ACTION_RESPONSE: "action-response",
                        DATA_NOTIFICATION: "data-notification",
                        EXCEPTION_RESPONSE: "exception-response",
                        CONFIRMED_SERVICE_ERROR: "confirmed-service-error"}


def parse_service(raw: bytes) -> Service:
    """One plain xDLMS service APDU filling `raw` (FrameError naming the offset otherwise)."""
    if not raw:
        raise FrameError("empty APDU", 0)
    reader = Reader(raw, 1)
    tag = raw[0]
    service: Service
    if tag == DATA_NOTIFICATION:
        service = DataNotification.read(reader)
    elif tag == EXCEPTION_RESPONSE:
        service = ExceptionResponse.read(reader)
    elif tag == CONFIRMED_SERVICE_ERROR:
        service = ConfirmedServiceError.read(reader)
    elif tag in _TYPED:
        kind = reader.byte("service type")
        if kind not in _KINDS[tag]:
            raise FrameError(f"{SERVICE_NAMES[tag]} type {kind} does not exist", 1)
        service = _TYPED[tag](reader, kind, reader.byte("invoke id and priority"))
    else:
        raise FrameError(f"APDU tag 0x{tag:02X} is not a known xDLMS service", 0)
    if reader.left:
        raise FrameError(f"{reader.left} bytes after the {SERVICE_NAMES[tag]}", reader.pos)
    return service


def raise_for_result(service: Service) -> None:
    """ServiceError for a refusal: exception-response, confirmed-service-error, or a
    response whose result is not success."""
    if isinstance(service, ExceptionResponse | ConfirmedServiceError):
        raise ServiceError(service.reason())
    codes: list[int] = []
    if isinstance(service, GetResponse):
        codes = [r for r in service.results if isinstance(r, int)]
        if isinstance(service.raw_data, int):
            codes.append(service.raw_data)
    elif isinstance(service, SetResponse):
        codes = list(service.results)
    elif isinstance(service, ActionResponse):
        codes = [service.result]
        if isinstance(service.returned, int):
            codes.append(service.returned)
    failed = [c for c in codes if c != SUCCESS]
    if failed:
        raise ServiceError(DATA_ACCESS_RESULTS.get(failed[0], f"result_{failed[0]}"),
                           f"{len(failed)} of {len(codes)} refused" if len(codes) > 1 else "")
