"""Typed rows of the store: readings, events, outbox records and usage figures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# flags bit 0: the gateway clock was not synchronised when the reading was taken.
FLAG_CLOCK_UNSYNCED = 0x01
# flags bit 1: a value the meter kept for this instant (a load-profile interval, a billing
# closure) and handed over later, not a reading taken now; prepay does not charge it.
FLAG_METER_RECORD = 0x02

SEVERITIES = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True, slots=True)
class StoredValue:
    """One exact value of one quantity: a Decimal for numbers or a str for text values."""

    quantity: str
    value: Decimal | str
    unit: str


@dataclass(frozen=True, slots=True)
class ReadingSet:
    """All values read from one meter at one instant; `id` is set once stored."""

    meter_id: str
    ts_ms: int
    values: tuple[StoredValue, ...]
    flags: int = 0
    id: int | None = None
    # with FLAG_METER_RECORD: the meter's series it belongs to ("load_profile", "billing"),
    # whose mark (storage/meter_records.py) advances with it; not stored in the row itself
    series: str = ""


@dataclass(frozen=True, slots=True)
class EventRecord:
    """Something that happened (relay switched, meter lost, store full), optionally per meter."""

    kind: str
    ts_ms: int
    meter_id: str | None
    severity: str
    data: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One record waiting for the uplink; `id` is the record id sent upstream."""

    id: int
    kind: str
    priority: int
    ref: int
    created_ms: int
    batch_seq: int | None
    body: Any


@dataclass(frozen=True, slots=True)
class StoreUsage:
    """Size and backlog figures for monitoring and the console."""

    bytes_used: int
    max_bytes: int | None
    readings: int
    oldest_reading_ms: int | None
    undelivered: int
