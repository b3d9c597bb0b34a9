"""Unsolicited and error APDUs: data-notification (the HAN push), exception-response and
confirmed-service-error (IEC 62056-5-3 9.5), each with parse and build.

A data-notification's date-time is an octet string of 0 or 12 bytes. Meters send it as a Data
octet-string (`09 0C ...`, every HAN capture) or as a bare length (`0C ...` / `00`); both are
read, and it is built the way meters send it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from drivers.dlms.axdr import Data, Reader, encode_data, read_data
from drivers.dlms.timefields import DATE_TIME_BYTES, CosemDateTime, decode_date_time
from drivers.errors import FrameError

DATA_NOTIFICATION: Final = 0x0F
EXCEPTION_RESPONSE: Final = 0xD8
CONFIRMED_SERVICE_ERROR: Final = 0x0E
OCTET_STRING_TAG: Final = 0x09
INVOCATION_COUNTER_ERROR: Final = 6

STATE_ERRORS: Final = {1: "service_not_allowed", 2: "service_unknown"}
SERVICE_ERRORS: Final = {1: "operation_not_possible", 2: "service_not_supported",
                         3: "other_reason", 4: "pdu_too_long", 5: "deciphering_error",
                         6: "invocation_counter_error"}
CONFIRMED_SERVICES: Final = {1: "initiate", 2: "get_status", 3: "get_name_list",
                             4: "get_variable_attribute", 5: "read", 6: "write",
                             7: "get_data_set_attribute", 8: "get_ti_attribute",
                             9: "change_scope", 10: "start", 11: "stop", 12: "resume",
                             13: "make_usable", 14: "initiate_load", 15: "load_segment",
                             16: "terminate_load", 17: "initiate_upload", 18: "upload_segment",
                             19: "terminate_upload"}
# ServiceError CHOICE tag -> its name; the value inside is an enum of that kind
SERVICE_ERROR_KINDS: Final = {0: "application_reference", 1: "hardware_resource",
                              2: "vde_state_error", 3: "service", 4: "definition", 5: "access",
                              6: "initiate", 7: "load_data_set", 8: "change_scope", 9: "task",
                              10: "other"}
INITIATE_ERRORS: Final = {0: "other", 1: "dlms_version_too_low", 2: "incompatible_conformance",
                          3: "pdu_size_too_short", 4: "refused_by_the_vde_handler"}


@dataclass(frozen=True, slots=True)
class DataNotification:
    """A push: long invoke id and priority, the optional date-time, the body (one Data)."""

    long_invoke: int
    date_time: CosemDateTime | None
    body: Data

    def build(self) -> bytes:
        stamp = b"\x00" if self.date_time is None else (
            bytes([OCTET_STRING_TAG, DATE_TIME_BYTES]) + self.date_time.encode())
        return (bytes([DATA_NOTIFICATION]) + self.long_invoke.to_bytes(4, "big") + stamp
                + encode_data(self.body))

    @classmethod
    def read(cls, reader: Reader) -> DataNotification:
        invoke = int.from_bytes(reader.take(4, "long invoke id"), "big")
        at = reader.pos
        size = reader.byte("date-time length")
        if size == OCTET_STRING_TAG:
            size = reader.byte("date-time length")
        if size not in (0, DATE_TIME_BYTES):
            raise FrameError(f"notification date-time of {size} bytes (0 or 12)", at)
        raw = reader.take(size, "date-time")
        stamp = decode_date_time(raw, at + 1) if raw else None
        return cls(invoke, stamp, read_data(reader))


@dataclass(frozen=True, slots=True)
class ExceptionResponse:
    state_error: int
    service_error: int
    invocation_counter: int | None = None  # with invocation-counter-error: the expected one

    def reason(self) -> str:
        state = STATE_ERRORS.get(self.state_error, f"state_error_{self.state_error}")
        service = SERVICE_ERRORS.get(self.service_error, f"service_error_{self.service_error}")
        counter = "" if self.invocation_counter is None else f" {self.invocation_counter}"
        return f"{state}/{service}{counter}"

    def build(self) -> bytes:
        tail = b"" if self.invocation_counter is None else self.invocation_counter.to_bytes(
            4, "big")
        return bytes([EXCEPTION_RESPONSE, self.state_error, self.service_error]) + tail

    @classmethod
    def read(cls, reader: Reader) -> ExceptionResponse:
        state, service = reader.byte("state error"), reader.byte("service error")
        counter = None
        if service == INVOCATION_COUNTER_ERROR and reader.left:
            counter = int.from_bytes(reader.take(4, "invocation counter"), "big")
        return cls(state, service, counter)


@dataclass(frozen=True, slots=True)
class ConfirmedServiceError:
    service: int  # CONFIRMED_SERVICES key
    kind: int  # SERVICE_ERROR_KINDS key
    value: int

    def reason(self) -> str:
        service = CONFIRMED_SERVICES.get(self.service, f"service_{self.service}")
        kind = SERVICE_ERROR_KINDS.get(self.kind, f"kind_{self.kind}")
        value = (INITIATE_ERRORS.get(self.value, str(self.value)) if self.kind == 6
                 else str(self.value))
        return f"{service}: {kind} {value}"

    def build(self) -> bytes:
        return bytes([CONFIRMED_SERVICE_ERROR, self.service, self.kind, self.value])

    @classmethod
    def read(cls, reader: Reader) -> ConfirmedServiceError:
        return cls(reader.byte("confirmed service"), reader.byte("service error kind"),
                   reader.byte("service error"))
