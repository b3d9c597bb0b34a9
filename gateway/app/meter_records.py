"""A read's samples into reading sets: the values read now in one set, and the records a meter
kept (a load-profile interval, a billing closure: `Sample.at_ms`) one set per instant and
series, flagged FLAG_METER_RECORD; a record at or before the gateway's mark of its series is
dropped (a profile read again after a restart is stored once).

The marks start from the store (storage/meter_records.py: advanced in the transaction that
stores the records) and move here as the writer takes records, so the next read asks for what
came after; a plugin reads them through `Context.records_until`. When the writer drops sets
unstored (store full), `resync` puts the marks back to what the store and the writer's buffer
hold, so what was dropped is read again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from drivers.readings import Sample
from storage.records import FLAG_METER_RECORD, ReadingSet, StoredValue

LOGGER = logging.getLogger(__name__)

# At most this many records from one read: a long backfill is taken over several polls, oldest
# first, so one read cannot fill the writer's buffer (the rest is asked for again next time).
MAX_RECORDS_PER_READ: Final = 1000
# A record dated this far past the gateway's clock is refused: a meter clock run ahead would
# otherwise carry its series' mark past every honest record to come.
FUTURE_TOLERANCE_MS: Final = 300_000
_SERIES: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")


class MeterRecords:
    """The marks of every (meter, series), and the split of a read into reading sets."""

    def __init__(self, marks: Mapping[tuple[str, str], int]) -> None:
        self._marks = dict(marks)
        self.dropped = 0  # records at or before their mark: already held
        self.refused = 0  # records no commit could take (no series, dated in the future)
        self._warned: set[tuple[str, str]] = set()

    def until(self, meter_id: str, series: str) -> int | None:
        """The newest instant of the series the gateway holds (or is storing now)."""
        return self._marks.get((meter_id, series))

    def split(self, meter_id: str, samples: Sequence[Sample], now_ms: int,
              flags: int) -> tuple[ReadingSet | None, list[ReadingSet]]:
        """(the set read now, or None when the read held only records; the new record sets,
        oldest first). The marks move when the writer takes a record (`accepted`)."""
        live = tuple(StoredValue(s.quantity, s.value, s.unit) for s in samples if s.at_ms is None)
        kept: dict[tuple[str, int], list[StoredValue]] = {}
        for sample in samples:
            if sample.at_ms is not None and self._usable(meter_id, sample, now_ms):
                kept.setdefault((sample.series, sample.at_ms), []).append(
                    StoredValue(sample.quantity, sample.value, sample.unit))
        records: list[ReadingSet] = []
        for (series, at_ms), values in sorted(kept.items(), key=lambda kv: kv[0][1]):
            mark = self._marks.get((meter_id, series))
            if mark is not None and at_ms <= mark:
                self.dropped += 1
            elif len(records) < MAX_RECORDS_PER_READ:
                records.append(ReadingSet(meter_id, at_ms, tuple(values),
                                          flags | FLAG_METER_RECORD, series=series))
        has_live = bool(live) or not any(s.at_ms is not None for s in samples)
        return (ReadingSet(meter_id, now_ms, live, flags) if has_live else None), records

    def accepted(self, record: ReadingSet) -> None:
        """The writer took `record`: the next read starts after it."""
        key = (record.meter_id, record.series)
        self._marks[key] = max(record.ts_ms, self._marks.get(key, record.ts_ms))

    def resync(self, stored: Mapping[tuple[str, str], int], buffered: Iterable[ReadingSet]
               ) -> None:
        """The marks as the store holds them, moved past the records still waiting to be
        committed: after the writer dropped sets, what it dropped is read again."""
        self._marks = dict(stored)
        for record in buffered:
            self.accepted(record)

    def _usable(self, meter_id: str, sample: Sample, now_ms: int) -> bool:
        assert sample.at_ms is not None
        problem = ("no series name (lower_snake_case)" if _SERIES.fullmatch(sample.series) is None
                   else "dated after the gateway's clock"
                   if sample.at_ms > now_ms + FUTURE_TOLERANCE_MS else "")
        if not problem:
            return True
        self.refused += 1
        if (meter_id, problem) not in self._warned:  # once per meter and kind of problem
            self._warned.add((meter_id, problem))
            LOGGER.warning("meter_record_refused", extra={
                "meter": meter_id, "series": sample.series[:40], "at_ms": sample.at_ms,
                "quantity": sample.quantity, "problem": problem})
        return False
