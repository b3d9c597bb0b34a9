"""Meter timestamps: DSMR `YYMMDDhhmmssX` (X = S summer / W winter) and IEC `YY-MM-DD hh:mm[:ss]`.

A DSMR meter's clock is local wall time, and the flag says whether summer time is in force: in
the hour that repeats in autumn, `201025023000S` and `201025023000W` are one hour apart. The flag
is kept, so the conversion to UTC is exact: winter time is the meter's standard offset from UTC
(`utc_offset_min`, 60 for the Dutch and Belgian CET of DSMR), summer time one hour more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

_DSMR: Final = re.compile(r"^(\d{12})([SW]?)$")
_IEC_PATTERNS: Final = ("%y-%m-%d %H:%M", "%y-%m-%d %H:%M:%S")
SUMMER_SHIFT: Final = timedelta(hours=1)  # DST in every zone DSMR-like meters are sold in


@dataclass(frozen=True, slots=True)
class MeterTimestamp:
    """A meter's wall-clock time and its summer-time flag (None: the meter sent no flag)."""

    local: datetime  # naive
    dst: bool | None = None

    def offset(self, utc_offset_min: int) -> timedelta | None:
        """Local minus UTC at this instant; None when there is no flag to decide it."""
        if self.dst is None:
            return None
        return timedelta(minutes=utc_offset_min) + (SUMMER_SHIFT if self.dst else timedelta(0))

    def to_utc(self, utc_offset_min: int) -> datetime | None:
        """The instant in UTC (aware); None without a S/W flag (the offset would be a guess)."""
        offset = self.offset(utc_offset_min)
        return None if offset is None else (self.local - offset).replace(tzinfo=UTC)

    def isoformat(self, utc_offset_min: int | None) -> str:
        """ISO 8601 local time, with its UTC offset when the flag and the zone give it."""
        offset = None if utc_offset_min is None else self.offset(utc_offset_min)
        if offset is None:
            return self.local.isoformat()
        return self.local.replace(tzinfo=timezone(offset)).isoformat()


def parse_timestamp(text: str) -> MeterTimestamp | None:
    """DSMR `YYMMDDhhmmss[S|W]` or IEC `YY-MM-DD hh:mm[:ss]`; None if it is neither."""
    stripped = text.strip()
    match = _DSMR.match(stripped)
    if match is not None:
        try:
            local = datetime.strptime(match[1], "%y%m%d%H%M%S")
        except ValueError:
            return None
        return MeterTimestamp(local, None if not match[2] else match[2] == "S")
    for pattern in _IEC_PATTERNS:
        try:
            return MeterTimestamp(datetime.strptime(stripped, pattern))
        except ValueError:
            continue
    return None
