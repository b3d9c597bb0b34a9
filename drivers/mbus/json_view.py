"""EN 13757-3 records, samples and compact-profile series as JSON, the same for wired and
wireless M-Bus (`gateway mbus decode` and `gateway wmbus decode` print one shape)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from drivers.cli_io import jsonable
from drivers.mbus.profiles import Series
from drivers.mbus.records import Record
from drivers.readings import Sample


def record_json(r: Record) -> dict[str, Any]:
    """One record; with no value (invalid date, out of range) what the meter sent, and why."""
    return {"storage": r.storage, "tariff": r.tariff, "subunit": r.subunit,
            "function": r.function, "quantity": r.kind, "unit": r.unit,
            "value": jsonable(r.value), "modifiers": list(r.modifiers),
            **({"raw": r.raw.hex(), "error": r.error} if r.raw is not None else {})}


def samples_json(samples: Iterable[Sample]) -> list[dict[str, Any]]:
    return [{"quantity": s.quantity, "value": str(s.value), "unit": s.unit} for s in samples]


def series_json(series: Series) -> dict[str, Any]:
    """A compact profile as dated points (storage, time, exact value)."""
    return {"quantity": series.kind, "unit": series.unit, "storage": series.storage,
            "tariff": series.tariff, "subunit": series.subunit, "mode": series.mode,
            "spacing": series.spacing, **({"problem": series.problem} if series.problem else {}),
            "points": [{"storage": p.storage, "at": p.at, "value": jsonable(p.value)}
                       for p in series.points]}
