"""The 60870-5-102 ASDU as the REE profile frames it: the data unit identifier and the raw
information objects (typed in objects.py).

    type id (1) | VSQ: SQ bit 7, number of objects bits 0-6 (1)
    | COT: T bit 7, P/N bit 6, cause bits 0-5 (1)
    | common address: meter (measuring point) address, 2 octets LE, + record address (1)
    | information objects ...
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from drivers.errors import FrameError

HEADER_SIZE: Final = 6
MAX_OBJECTS: Final = 127


class Cause(enum.IntEnum):
    """Causes of transmission the profile uses."""

    INITIALISED = 4
    REQUEST = 5               # request / requested
    ACTIVATION = 6
    ACTIVATION_CON = 7
    DEACTIVATION = 8
    DEACTIVATION_CON = 9
    ACTIVATION_TERM = 10
    NO_RECORD = 13            # requested data record not available
    UNKNOWN_TYPE = 14         # requested ASDU type not available
    UNKNOWN_RECORD = 15       # record number in the master's ASDU unknown
    UNKNOWN_ADDRESS = 16      # ASDU address specification unknown
    NO_OBJECT = 17            # requested information object not available
    NO_PERIOD = 18            # requested integration period not available


ERROR_CAUSES: Final = frozenset({Cause.NO_RECORD, Cause.UNKNOWN_TYPE, Cause.UNKNOWN_RECORD,
                                 Cause.UNKNOWN_ADDRESS, Cause.NO_OBJECT, Cause.NO_PERIOD})

TYPE_NAMES: Final[dict[int, str]] = {
    1: "M_SP_TA_2", 8: "M_IT_TG_2", 11: "M_IT_TK_2", 71: "P_MP_NA_2", 72: "M_TI_TA_2",
    100: "C_RD_NA_2", 102: "C_SP_NB_2", 103: "C_TI_NA_2", 122: "C_CI_NT_2", 123: "C_CI_NU_2",
    133: "C_TA_VC_2", 134: "C_TA_VM_2", 135: "M_TA_VC_2", 136: "M_TA_VM_2", 140: "M_IB_TK_2",
    144: "C_PC_NA_2", 145: "M_PC_NA_2", 181: "C_CS_TA_2", 183: "C_AC_NA_2", 187: "C_FS_NA_2",
    190: "C_CB_UN_2",
}


def type_name(type_id: int) -> str:
    return TYPE_NAMES.get(type_id, f"type_{type_id}")


def cause_name(cause: int) -> str:
    try:
        return Cause(cause).name.lower()
    except ValueError:
        return f"cause_{cause}"


@dataclass(frozen=True, slots=True)
class Asdu:
    type_id: int
    cause: int
    meter_address: int
    record_address: int
    objects: bytes = b""
    count: int = 0
    sq: bool = False
    negative: bool = False     # P/N: a negative confirmation
    test: bool = False

    def to_bytes(self) -> bytes:
        for value, top, what in ((self.type_id, 255, "type id"), (self.cause, 63, "cause"),
                                 (self.count, MAX_OBJECTS, "object count"),
                                 (self.meter_address, 0xFFFF, "meter address"),
                                 (self.record_address, 255, "record address")):
            if not 0 <= value <= top:
                raise ValueError(f"{what} {value} does not fit (0..{top})")
        return (bytes([self.type_id, self.sq << 7 | self.count,
                       self.test << 7 | self.negative << 6 | self.cause])
                + self.meter_address.to_bytes(2, "little") + bytes([self.record_address])
                + self.objects)

    @classmethod
    def from_bytes(cls, data: bytes) -> Asdu:
        if len(data) < HEADER_SIZE:
            raise FrameError(f"ASDU of {len(data)} octets has no whole data unit identifier",
                             len(data))
        return cls(type_id=data[0], cause=data[2] & 0x3F,
                   meter_address=int.from_bytes(data[3:5], "little"), record_address=data[5],
                   objects=bytes(data[HEADER_SIZE:]), count=data[1] & 0x7F,
                   sq=bool(data[1] & 0x80), negative=bool(data[2] & 0x40),
                   test=bool(data[2] & 0x80))

    @property
    def name(self) -> str:
        return type_name(self.type_id)
