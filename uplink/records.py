"""Outbox records to wire records: one encoder per kind, registrable by other packages."""

import dataclasses
from collections.abc import Callable
from typing import Any

from storage.batches import CommandResult
from storage.records import EventRecord, OutboxRecord, ReadingSet
from uplink.codec import WireRecord, reading_fields

FieldEncoder = Callable[[Any], dict[str, Any]]


def _reading(body: ReadingSet) -> dict[str, Any]:
    fields = reading_fields(body.meter_id, ((v.quantity, v.value) for v in body.values))
    if body.flags:
        fields["f"] = body.flags
    return fields


def _event(body: EventRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {"e": body.kind, "s": body.severity, "d": dict(body.data)}
    if body.meter_id is not None:
        fields["m"] = body.meter_id
    return fields


def _cmd_result(body: CommandResult) -> dict[str, Any]:
    return {"cmd": body.cmd_id, "op": body.op, "ok": body.ok, "r": body.body}


def _generic(body: Any) -> dict[str, Any]:
    # Kinds without an encoder (e.g. `ledger` until prepay registers one) go as their fields.
    if dataclasses.is_dataclass(body) and not isinstance(body, type):
        return {"b": dataclasses.asdict(body)}
    return {"b": body}


_ENCODERS: dict[str, FieldEncoder] = {
    "reading": _reading, "event": _event, "cmd_result": _cmd_result,
}


def register_record_encoder(kind: str, encoder: FieldEncoder) -> None:
    """Declare how a kind's outbox body becomes wire fields (values exact: int or Decimal)."""
    _ENCODERS[kind] = encoder


def to_wire(rec: OutboxRecord) -> WireRecord:
    """The wire form of one outbox record; its time is the body's, else the outbox row's."""
    fields = _ENCODERS.get(rec.kind, _generic)(rec.body)
    ts_ms = getattr(rec.body, "ts_ms", None)
    return WireRecord(rec.kind, rec.id, ts_ms if isinstance(ts_ms, int) else rec.created_ms,
                      fields)
