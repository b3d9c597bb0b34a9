"""Which body each type id carries, and the parsers that check its length before slicing:
`body_of(asdu)` types an ASDU's information objects, `asdu_of(...)` builds one from a body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from drivers.errors import FrameError
from drivers.iec102.asdu import Asdu
from drivers.iec102.objects import (
    BILLING_SIZE,
    BLOCK_SIZES,
    Billing,
    BillingRecords,
    Block,
    BlockRange,
    Blocks,
    Body,
    Clock,
    Empty,
    Event,
    Events,
    Password,
    Raw,
    TimeRange,
    Total,
    Totals,
    TotalsRange,
)
from drivers.iec102.timetags import TIME_A_SIZE, TIME_B_SIZE, TimeA, TimeB

TOTAL_SIZE: Final = 6      # address, 4 octets, quality
EVENT_SIZE: Final = 2 + TIME_B_SIZE


def _need(asdu: Asdu, size: int) -> bytes:
    if len(asdu.objects) != size:
        raise FrameError(f"{asdu.name}: {len(asdu.objects)} octets of objects, {size} expected")
    return asdu.objects


def _empty(asdu: Asdu) -> Body:
    if asdu.objects:
        return Raw(asdu.count, asdu.objects)   # a confirmation may echo what was asked
    return Empty()


def _password(asdu: Asdu) -> Body:
    return Password(int.from_bytes(_need(asdu, 4), "little"))


def _clock(asdu: Asdu) -> Body:
    return Clock(TimeB.from_bytes(_need(asdu, TIME_B_SIZE)))


def _totals_range(asdu: Asdu) -> Body:
    d = _need(asdu, 2 + 2 * TIME_A_SIZE)
    return TotalsRange(d[0], d[1], TimeA.from_bytes(d[2:7]), TimeA.from_bytes(d[7:12]))


def _time_range(asdu: Asdu) -> Body:
    d = _need(asdu, 2 * TIME_A_SIZE)
    return TimeRange(TimeA.from_bytes(d[:5]), TimeA.from_bytes(d[5:]))


def _block_range(asdu: Asdu) -> Body:
    d = _need(asdu, 1 + 2 * TIME_A_SIZE)
    return BlockRange(d[0], TimeA.from_bytes(d[1:6]), TimeA.from_bytes(d[6:11]))


def _totals(asdu: Asdu) -> Body:
    d = _need(asdu, asdu.count * TOTAL_SIZE + TIME_A_SIZE)
    totals = tuple(Total(d[at], int.from_bytes(d[at + 1:at + 5], "little"), d[at + 5])
                   for at in range(0, asdu.count * TOTAL_SIZE, TOTAL_SIZE))
    return Totals(totals, TimeA.from_bytes(d[-TIME_A_SIZE:]))


def _blocks(asdu: Asdu) -> Body:
    d, at = asdu.objects, 0
    blocks: list[Block] = []
    for _ in range(asdu.count):
        if at >= len(d) or d[at] not in BLOCK_SIZES:
            raise FrameError(f"{asdu.name}: block {len(blocks) + 1} has no known address")
        size = BLOCK_SIZES[d[at]]
        end = at + 1 + 5 * size + TIME_A_SIZE
        if end > len(d):
            raise FrameError(f"{asdu.name}: block {len(blocks) + 1} is cut")
        totals = tuple((int.from_bytes(d[p:p + 4], "little"), d[p + 4])
                       for p in range(at + 1, at + 1 + 5 * size, 5))
        blocks.append(Block(d[at], totals, TimeA.from_bytes(d[end - TIME_A_SIZE:end])))
        at = end
    if at != len(d):
        raise FrameError(f"{asdu.name}: {len(d) - at} octets after the blocks")
    return Blocks(tuple(blocks))


def _billing(asdu: Asdu) -> Body:
    d = _need(asdu, asdu.count * BILLING_SIZE)
    return BillingRecords(tuple(Billing.from_bytes(d[at:at + BILLING_SIZE])
                                for at in range(0, len(d), BILLING_SIZE)))


def _events(asdu: Asdu) -> Body:
    d = _need(asdu, asdu.count * EVENT_SIZE)
    return Events(tuple(
        Event(d[at], d[at + 1] & 0x7F, bool(d[at + 1] & 0x80),
              TimeB.from_bytes(d[at + 2:at + EVENT_SIZE]))
        for at in range(0, len(d), EVENT_SIZE)))


PARSERS: Final[dict[int, Callable[[Asdu], Body]]] = {
    1: _events, 8: _totals, 11: _totals, 72: _clock, 100: _empty, 102: _time_range,
    103: _empty, 122: _totals_range, 123: _totals_range, 133: _empty, 134: _time_range,
    135: _billing, 136: _billing, 140: _blocks, 181: _clock, 183: _password, 187: _empty,
    190: _block_range,
}


def body_of(asdu: Asdu) -> Body:
    """The typed information objects; FrameError when they do not fit the type's layout."""
    parser = PARSERS.get(asdu.type_id)
    if parser is None:
        return Raw(asdu.count, asdu.objects)
    return parser(asdu)


def asdu_of(type_id: int, cause: int, meter_address: int, record_address: int, body: Body,
            negative: bool = False) -> Asdu:
    count, objects = body.build()
    return Asdu(type_id, cause, meter_address, record_address, objects, count,
                negative=negative)
