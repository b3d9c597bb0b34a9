"""A meter's own records in a poll: the load profile (series `load_profile`) and the billing
profile (series `billing`) read by range, inside the poll's association, from where the
gateway's records of that series end (`Context.records_until`, the mark the service advances
in the transaction that stores them) to now; each row becomes dated samples (`Sample.at_ms`,
`series`) in the gateway's quantities, exact and scaled by the register column's scaler.

Meter keys: `load_profile_every` / `billing_every` (read the series every N polls, 0 never),
`load_profile_backfill_h` / `billing_backfill_days` (how far back a series the gateway holds
nothing of is read), `meter_timezone` (the meter's local time zone, for the range bounds and
for rows whose clock column carries no deviation). A row time that a DST change makes
ambiguous is taken as its first occurrence.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drivers.dlms.client import Association
from drivers.dlms.cosem import ProfileRow, ScalerUnit
from drivers.dlms.errors import ServiceError
from drivers.dlms.profile_read import read_range
from drivers.dlms.push import samples
from drivers.dlms.read_profiles import ReadProfile
from drivers.readings import Sample

LOGGER = logging.getLogger(__name__)
LOAD_PROFILE: Final = "load_profile"
BILLING: Final = "billing"
HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS
NEXT_ROW_MS: Final = 1000  # the range starts one second after the newest row held


@dataclass(frozen=True, slots=True)
class RecordSeries:
    series: str
    obis: str
    every: int  # polls between reads; 0: never
    backfill_ms: int  # read this far back when the gateway holds none of the series


def zone_of(name: str) -> tzinfo:
    """The meter's time zone ("UTC" or an IANA name); ValueError when unknown."""
    if name in ("", "UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def check_zone(value: Any) -> str | None:
    try:
        zone_of(str(value))
    except ValueError as error:
        return str(error)
    return None


def record_series(profile: ReadProfile, opts: dict[str, Any]) -> tuple[RecordSeries, ...]:
    """The series a meter reads: its profile's objects, or the `load_profile_obis` /
    `billing_obis` given for the meter."""
    out = []
    lp = opts.get("load_profile_obis") or profile.load_profile
    if lp and opts.get("load_profile_every", 1):
        out.append(RecordSeries(LOAD_PROFILE, lp, int(opts.get("load_profile_every", 1)),
                                int(opts.get("load_profile_backfill_h", 24)) * HOUR_MS))
    billing = opts.get("billing_obis") or profile.billing
    if billing and opts.get("billing_every", 1):
        out.append(RecordSeries(BILLING, billing, int(opts.get("billing_every", 1)),
                                int(opts.get("billing_backfill_days", 366)) * DAY_MS))
    return tuple(out)


class RecordReader:
    """Per bus: which series are due in this poll, and reading them."""

    def __init__(self, records_until: Callable[[str, str], int | None],
                 wall_ms: Callable[[], int]) -> None:
        self._until = records_until
        self._wall_ms = wall_ms
        self._polls: Counter[str] = Counter()
        self._scalers: dict[tuple[str, str], dict[str, ScalerUnit]] = {}
        self.counters: Counter[tuple[str, str]] = Counter()  # (meter, name)

    def due(self, meter_id: str, series: tuple[RecordSeries, ...]) -> tuple[RecordSeries, ...]:
        """Counts this poll; the series whose turn it is (every series in the first poll)."""
        poll = self._polls[meter_id]
        self._polls[meter_id] += 1
        return tuple(s for s in series if s.every and poll % s.every == 0)

    async def read(self, association: Association, meter_id: str,
                   series: tuple[RecordSeries, ...], zone: tzinfo) -> list[Sample]:
        out: list[Sample] = []
        for one in series:
            out.extend(await self._read_one(association, meter_id, one, zone))
        return out

    async def _read_one(self, association: Association, meter_id: str, one: RecordSeries,
                        zone: tzinfo) -> list[Sample]:
        until = self._until(meter_id, one.series)
        now_ms = self._wall_ms()
        start_ms = now_ms - one.backfill_ms if until is None else until + NEXT_ROW_MS
        if start_ms > now_ms:
            return []
        key = (meter_id, one.obis)
        try:
            got = await read_range(association, one.obis, _local(start_ms, zone),
                                   _local(now_ms, zone), self._scalers.get(key))
        except ServiceError as error:  # the meter has no such profile, or refuses it
            self.counters[(meter_id, "record_errors")] += 1
            LOGGER.warning("dlms_records_refused", extra={
                "meter": meter_id, "series": one.series, "obis": one.obis, "error": str(error)})
            return []
        if got.scalers is not None:
            self._scalers[key] = got.scalers
        out = rows_to_samples(got.rows, one.series, zone, after_ms=until)
        self.counters[(meter_id, "records")] += len({s.at_ms for s in out})
        return out


def rows_to_samples(rows: list[ProfileRow], series: str, zone: tzinfo,
                    after_ms: int | None = None) -> list[Sample]:
    """Each dated row's values as samples of its instant (rows without a time, or at or
    before `after_ms`, are left out)."""
    out: list[Sample] = []
    for row in rows:
        at_ms = row_instant(row, zone)
        if at_ms is None or (after_ms is not None and at_ms <= after_ms):
            continue
        out.extend(dataclasses.replace(s, at_ms=at_ms, series=series)
                   for s in samples(list(row.values)) if s.quantity != "meter_datetime")
    return out


def row_instant(row: ProfileRow, zone: tzinfo) -> int | None:
    """UTC ms of a row: absolute when its clock carries a deviation, else the meter's local
    time in `zone`."""
    if row.when is None:
        return None
    stamp = datetime.fromisoformat(row.when_text) if row.when_text else row.when
    if stamp.tzinfo is None:
        stamp = row.when.replace(tzinfo=zone)
    return round(stamp.timestamp() * 1000)


def _local(ms: int, zone: tzinfo) -> datetime:
    """The meter's local time (naive, whole seconds) of a UTC instant."""
    return datetime.fromtimestamp(ms // 1000, zone).replace(tzinfo=None)
