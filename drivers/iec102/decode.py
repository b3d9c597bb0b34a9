"""One 60870-5-102 frame as a JSON document: link fields, then the ASDU (type id and name,
cause, addresses) with its information objects, exact values as strings, quality bits named,
times in the given zone (the site's; the meter's SU bit picks the side of the autumn hour)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from drivers import ft12
from drivers.errors import FrameError
from drivers.iec102 import link
from drivers.iec102.asdu import Asdu, cause_name
from drivers.iec102.bodies import body_of
from drivers.iec102.objects import (
    Billing,
    BillingRecords,
    BlockRange,
    Blocks,
    Body,
    Clock,
    Empty,
    Energy,
    Events,
    Password,
    Raw,
    TimeRange,
    Totals,
    TotalsRange,
    quality_flags,
)
from drivers.iec102.timetags import TimeA, TimeB, tag_time

_PRIMARY = {f.value: f.name.lower() for f in link.Primary}
_SECONDARY = {f.value: f.name.lower() for f in link.Secondary}


def decode_frame(data: bytes, zone: ZoneInfo) -> dict[str, Any]:
    """FrameError (ChecksumError) for bytes that are not exactly one frame, or objects that do
    not fit their type's layout."""
    frame = ft12.parse_frame(data, link.ADDRESS_WIDTH)
    if isinstance(frame, ft12.SingleChar):
        return {"frame": "single_char", "link": {"meaning": "ack_or_no_data"}}
    document: dict[str, Any] = {
        "frame": "short" if isinstance(frame, ft12.ShortFrame) else "long",
        "link": _link(frame.control, frame.address)}
    if not isinstance(frame, ft12.ShortFrame):
        data_part = frame.data if isinstance(frame, ft12.LongFrame) else b""
        document["asdu"] = asdu_json(Asdu.from_bytes(bytes([frame.ci]) + data_part), zone)
    return document


def _link(control: int, address: int) -> dict[str, Any]:
    c = link.Control.of(control)
    names = _PRIMARY if c.prm else _SECONDARY
    fields: dict[str, Any] = {"control": f"{control:02X}", "prm": c.prm, "function": c.function,
                              "function_name": names.get(c.function, "unknown"),
                              "address": address}
    fields.update({"fcb": c.bit5, "fcv": c.bit4} if c.prm else {"acd": c.bit5, "dfc": c.bit4})
    return fields


def asdu_json(asdu: Asdu, zone: ZoneInfo) -> dict[str, Any]:
    return {"type_id": asdu.type_id, "type_name": asdu.name, "count": asdu.count,
            "sq": asdu.sq, "cause": asdu.cause, "cause_name": cause_name(asdu.cause),
            "negative": asdu.negative, "test": asdu.test,
            "meter_address": asdu.meter_address, "record_address": asdu.record_address,
            "objects": body_json(body_of(asdu), zone)}


def _time(tag: TimeA | TimeB, zone: ZoneInfo) -> dict[str, Any]:
    summer = tag.rest.summer if isinstance(tag, TimeB) else tag.summer
    invalid = tag.rest.invalid if isinstance(tag, TimeB) else tag.invalid
    try:
        when: str | None = tag_time(tag, zone).isoformat()
    except FrameError:
        when = None   # a tag that is no date (all zero: "not given") stays visible as octets
    return {"time": when, "summer": summer, "invalid": invalid, "octets": tag.to_bytes().hex()}


def _quality(quality: int) -> dict[str, Any]:
    return {"quality": quality, "flags": quality_flags(quality)}


def _energy(energy: Energy) -> dict[str, Any]:
    return {"absolute": str(energy.absolute), "increment": str(energy.increment),
            **_quality(energy.quality)}


def _billing(record: Billing, zone: ZoneInfo) -> dict[str, Any]:
    return {"address": record.address, "active": _energy(record.active),
            "reactive_inductive": _energy(record.reactive_inductive),
            "reactive_capacitive": _energy(record.reactive_capacitive),
            "reserved_7": {"value": str(record.reserved_7[0]), **_quality(record.reserved_7[1])},
            "reserved_8": {"value": str(record.reserved_8[0]), **_quality(record.reserved_8[1])},
            "max_demand": {"value": str(record.max_demand),
                           **_time(record.max_demand_time, zone),
                           **_quality(record.max_demand_quality)},
            "excess": {"value": str(record.excess), **_quality(record.excess_quality)},
            "period_start": _time(record.period_start, zone),
            "period_end": _time(record.period_end, zone)}


def body_json(body: Body, zone: ZoneInfo) -> list[dict[str, Any]]:
    if isinstance(body, Empty):
        return []
    if isinstance(body, Password):
        return [{"password": str(body.key)}]
    if isinstance(body, Clock):
        return [_time(body.time, zone)]
    if isinstance(body, TotalsRange):
        return [{"first": body.first, "last": body.last, "start": _time(body.start, zone),
                 "end": _time(body.end, zone)}]
    if isinstance(body, TimeRange):
        return [{"start": _time(body.start, zone), "end": _time(body.end, zone)}]
    if isinstance(body, BlockRange):
        return [{"address": body.address, "start": _time(body.start, zone),
                 "end": _time(body.end, zone)}]
    if isinstance(body, Totals):
        period_end = _time(body.time, zone)
        return [{"address": t.address, "value": str(t.value), **_quality(t.quality),
                 "period_end": period_end} for t in body.totals]
    if isinstance(body, Blocks):
        return [{"address": b.address, "totals": [{"value": str(v), **_quality(q)}
                                                  for v, q in b.totals],
                 "period_end": _time(b.time, zone)} for b in body.blocks]
    if isinstance(body, BillingRecords):
        return [_billing(r, zone) for r in body.records]
    if isinstance(body, Events):
        return [{"group": e.group, "code": e.code, "spi": e.spi, **_time(e.time, zone)}
                for e in body.events]
    assert isinstance(body, Raw)
    return [{"raw": body.data.hex()}] if body.data else []
