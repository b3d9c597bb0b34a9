"""The information objects of the REE profile's ASDUs, typed: parse from an `Asdu`, build back
(`body_of(asdu)` and `asdu_of(body, ...)`; `parse(build(x)) == x`). Values are integers in the
meter's units (kWh, kvarh, kW), never floats. Layouts: docs/iec102.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from drivers.iec102.timetags import TimeA, TimeB

# Quality descriptor of an integrated total (REE profile; bit 0 is reserved).
QUALITY_BITS: Final = (("IV", 0x80), ("CA", 0x40), ("CY", 0x20), ("VH", 0x10), ("MP", 0x08),
                       ("IN", 0x04), ("AL", 0x02))
INVALID: Final = 0x80
# M_IB_TK_2: how many totals a block of each object address holds (gisce/iec870ree's table).
BLOCK_SIZES: Final = {9: 8, 10: 6, 11: 3}
BILLING_SIZE: Final = 63


def quality_flags(quality: int) -> list[str]:
    return [name for name, bit in QUALITY_BITS if quality & bit]


def _u32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 4], "little")


def _p32(value: int) -> bytes:
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{value} does not fit 4 octets")
    return value.to_bytes(4, "little")


def _byte(value: int) -> bytes:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{value} is not an octet")
    return bytes([value])


@dataclass(frozen=True, slots=True)
class Empty:
    """No information object (C_TI_NA_2, C_FS_NA_2, C_TA_VC_2, C_RD_NA_2)."""

    def build(self) -> tuple[int, bytes]:
        return 0, b""


@dataclass(frozen=True, slots=True)
class Password:
    """C_AC_NA_2 (183): the access key, 4 octets LE (echoed in the confirmation)."""

    key: int

    def build(self) -> tuple[int, bytes]:
        return 1, _p32(self.key)


@dataclass(frozen=True, slots=True)
class Clock:
    """M_TI_TA_2 (72) and C_CS_TA_2 (181): one time tag B."""

    time: TimeB

    def build(self) -> tuple[int, bytes]:
        return 1, self.time.to_bytes()


@dataclass(frozen=True, slots=True)
class TotalsRange:
    """C_CI_NT_2 (122) / C_CI_NU_2 (123): object addresses first..last over a time range."""

    first: int
    last: int
    start: TimeA
    end: TimeA

    def build(self) -> tuple[int, bytes]:
        return 1, (_byte(self.first) + _byte(self.last) + self.start.to_bytes()
                   + self.end.to_bytes())


@dataclass(frozen=True, slots=True)
class TimeRange:
    """C_TA_VM_2 (134), C_SP_NB_2 (102): a time range."""

    start: TimeA
    end: TimeA

    def build(self) -> tuple[int, bytes]:
        return 1, self.start.to_bytes() + self.end.to_bytes()


@dataclass(frozen=True, slots=True)
class BlockRange:
    """C_CB_UN_2 (190): one object address over a time range."""

    address: int
    start: TimeA
    end: TimeA

    def build(self) -> tuple[int, bytes]:
        return 1, _byte(self.address) + self.start.to_bytes() + self.end.to_bytes()


@dataclass(frozen=True, slots=True)
class Total:
    address: int    # 1 AI, 2 AE, 3..6 R1..R4, 7-8 reserved (REE)
    value: int
    quality: int


@dataclass(frozen=True, slots=True)
class Totals:
    """M_IT_TG_2 (8, absolute) / M_IT_TK_2 (11, increments): totals and one common time A
    (the end of the integration period)."""

    totals: tuple[Total, ...]
    time: TimeA

    def build(self) -> tuple[int, bytes]:
        body = b"".join(_byte(t.address) + _p32(t.value) + _byte(t.quality) for t in self.totals)
        return len(self.totals), body + self.time.to_bytes()


@dataclass(frozen=True, slots=True)
class Block:
    """One block of M_IB_TK_2: the totals of one object address and their time A."""

    address: int
    totals: tuple[tuple[int, int], ...]   # (value, quality) in order
    time: TimeA


@dataclass(frozen=True, slots=True)
class Blocks:
    blocks: tuple[Block, ...]

    def build(self) -> tuple[int, bytes]:
        out = b""
        for block in self.blocks:
            if BLOCK_SIZES.get(block.address) != len(block.totals):
                raise ValueError(f"block {block.address} holds {len(block.totals)} totals")
            out += _byte(block.address) + b"".join(_p32(v) + _byte(q) for v, q in block.totals)
            out += block.time.to_bytes()
        return len(self.blocks), out


@dataclass(frozen=True, slots=True)
class Energy:
    absolute: int
    increment: int
    quality: int


@dataclass(frozen=True, slots=True)
class Billing:
    """One billing record of M_TA_VC_2 (135, current period) / M_TA_VM_2 (136, closed): object
    address 20 = all periods, 21..26 = tariff periods 1..6 (REE; the record address says the
    contract, 134..136)."""

    address: int
    active: Energy
    reactive_inductive: Energy
    reactive_capacitive: Energy
    reserved_7: tuple[int, int]   # (value, quality)
    reserved_8: tuple[int, int]
    max_demand: int               # kW
    max_demand_time: TimeA
    max_demand_quality: int
    excess: int                   # excess power (REE: "excesos")
    excess_quality: int
    period_start: TimeA
    period_end: TimeA

    def to_bytes(self) -> bytes:
        out = _byte(self.address)
        for energy in (self.active, self.reactive_inductive, self.reactive_capacitive):
            out += _p32(energy.absolute) + _p32(energy.increment) + _byte(energy.quality)
        for value, quality in (self.reserved_7, self.reserved_8):
            out += _p32(value) + _byte(quality)
        out += _p32(self.max_demand) + self.max_demand_time.to_bytes()
        out += _byte(self.max_demand_quality) + _p32(self.excess) + _byte(self.excess_quality)
        return out + self.period_start.to_bytes() + self.period_end.to_bytes()

    @classmethod
    def from_bytes(cls, d: bytes) -> Billing:
        active, inductive, capacitive = (Energy(_u32(d, at), _u32(d, at + 4), d[at + 8])
                                         for at in (1, 10, 19))
        return cls(d[0], active, inductive, capacitive, reserved_7=(_u32(d, 28), d[32]),
                   reserved_8=(_u32(d, 33), d[37]), max_demand=_u32(d, 38),
                   max_demand_time=TimeA.from_bytes(d[42:47]), max_demand_quality=d[47],
                   excess=_u32(d, 48), excess_quality=d[52],
                   period_start=TimeA.from_bytes(d[53:58]),
                   period_end=TimeA.from_bytes(d[58:63]))


@dataclass(frozen=True, slots=True)
class BillingRecords:
    records: tuple[Billing, ...]

    def build(self) -> tuple[int, bytes]:
        return len(self.records), b"".join(r.to_bytes() for r in self.records)


@dataclass(frozen=True, slots=True)
class Event:
    """One M_SP_TA_2 object: the event group (SPA), its code (SPQ), the SPI bit (start / end
    for the events that have two) and its time B."""

    group: int
    code: int
    spi: bool
    time: TimeB


@dataclass(frozen=True, slots=True)
class Events:
    events: tuple[Event, ...]

    def build(self) -> tuple[int, bytes]:
        out = b""
        for event in self.events:
            if not 0 <= event.code <= 0x7F:
                raise ValueError(f"event code {event.code} does not fit 7 bits")
            out += _byte(event.group) + bytes([event.code | event.spi << 7])
            out += event.time.to_bytes()
        return len(self.events), out


@dataclass(frozen=True, slots=True)
class Raw:
    """A type this package does not type: the objects as they came."""

    count: int
    data: bytes

    def build(self) -> tuple[int, bytes]:
        return self.count, self.data


Body = (Empty | Password | Clock | TotalsRange | TimeRange | BlockRange | Totals | Blocks
        | BillingRecords | Events | Raw)
