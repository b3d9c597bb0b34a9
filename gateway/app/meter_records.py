"""A read's samples into reading sets: the values read now in one set, and the records a meter
kept (a load-profile interval, a billing closure: `Sample.at_ms`) one set per instant and
series, flagged FLAG_METER_RECORD; a record at or before the gateway's mark of its series is
dropped (a profile read again after a restart is stored once).

The marks start from the store (storage/meter_records.py: advanced in the transaction that
stores the records) and move here as records are accepted, so the next read asks for what came
after; a plugin reads them through `Context.records_until`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from drivers.readings import Sample
from storage.records import FLAG_METER_RECORD, ReadingSet, StoredValue

LOGGER = logging.getLogger(__name__)


class MeterRecords:
    """The marks of every (meter, series), and the split of a read into reading sets."""

    def __init__(self, marks: Mapping[tuple[str, str], int]) -> None:
        self._marks = dict(marks)
        self.dropped = 0  # records at or before their mark: already held

    def until(self, meter_id: str, series: str) -> int | None:
        """The newest instant of the series the gateway holds (or is storing now)."""
        return self._marks.get((meter_id, series))

    def split(self, meter_id: str, samples: Sequence[Sample], now_ms: int,
              flags: int) -> tuple[ReadingSet | None, list[ReadingSet]]:
        """(the set read now or None when the read held only records, the new record sets
        oldest first); the marks move past the records returned."""
        live = tuple(StoredValue(s.quantity, s.value, s.unit) for s in samples if s.at_ms is None)
        kept: dict[tuple[str, int], list[StoredValue]] = {}
        for sample in samples:
            if sample.at_ms is not None:
                kept.setdefault((sample.series, sample.at_ms), []).append(
                    StoredValue(sample.quantity, sample.value, sample.unit))
        records = []
        for (series, at_ms), values in sorted(kept.items(), key=lambda kv: kv[0][1]):
            mark = self._marks.get((meter_id, series))
            if mark is not None and at_ms <= mark:
                self.dropped += 1
                continue
            records.append(ReadingSet(meter_id, at_ms, tuple(values), flags | FLAG_METER_RECORD,
                                      series=series))
        for reading in records:
            key = (meter_id, reading.series)
            self._marks[key] = max(reading.ts_ms, self._marks.get(key, reading.ts_ms))
        if len(kept) > len(records):
            LOGGER.debug("meter_records_already_held", extra={
                "meter": meter_id, "dropped": len(kept) - len(records)})
        return (ReadingSet(meter_id, now_ms, live, flags) if live or not kept else None), records
