"""The interval grid: boundaries at 15 min, hourly or daily in the site time zone, DST-correct.

A boundary is an instant (Unix ms). Sub-daily grids are the instants whose local wall time is a
multiple of the step (every real UTC offset is a multiple of 15 minutes, so the candidates are
the UTC quarter hours); a day on the hourly grid has 23, 24 or 25 intervals. The daily grid is
each local midnight (zoneinfo; a midnight a DST change skips becomes the instant after it).
"""

from __future__ import annotations

import datetime as dt
from typing import Final
from zoneinfo import ZoneInfo

QUARTER_MS: Final = 900_000
STEPS_MS: Final[dict[str, int]] = {"15min": QUARTER_MS, "hourly": 3_600_000, "daily": 86_400_000}
GRIDS: Final = tuple(STEPS_MS)


class Grid:
    """Boundaries of one grid kind in one zone; `next_after(t)` is the first boundary > t."""

    def __init__(self, kind: str, zone: str) -> None:
        if kind not in STEPS_MS:
            raise ValueError(f"grid must be one of {', '.join(GRIDS)}, not {kind!r}")
        self.kind = kind
        self.zone = ZoneInfo(zone)
        self._step_ms = STEPS_MS[kind]

    def _offset_ms(self, t_ms: int) -> int:
        when = dt.datetime.fromtimestamp(t_ms / 1000, self.zone)
        offset = when.utcoffset()
        return 0 if offset is None else int(offset.total_seconds() * 1000)

    def next_after(self, t_ms: int) -> int:
        if self.kind == "daily":
            return self._next_midnight(t_ms)
        candidate = (t_ms // QUARTER_MS + 1) * QUARTER_MS
        while (candidate + self._offset_ms(candidate)) % self._step_ms:
            candidate += QUARTER_MS
        return candidate

    def _next_midnight(self, t_ms: int) -> int:
        day = dt.datetime.fromtimestamp(t_ms // 1000, self.zone).date()
        while True:
            midnight = local_instant_ms(self.zone, day, 0)
            if midnight > t_ms:
                return midnight
            day += dt.timedelta(days=1)

    def is_boundary(self, t_ms: int) -> bool:
        return self.next_after(t_ms - 1) == t_ms

    def between(self, after_ms: int, through_ms: int) -> list[int]:
        """Every boundary b with after_ms < b <= through_ms, in order."""
        out = []
        b = self.next_after(after_ms)
        while b <= through_ms:
            out.append(b)
            b = self.next_after(b)
        return out


def local_instant_ms(zone: ZoneInfo, day: dt.date, hour: int) -> int:
    """The instant of `hour`:00 local on `day` (the first of two in a repeated hour; a skipped
    hour becomes the instant it would have been at the offset before the change)."""
    local = dt.datetime(day.year, day.month, day.day, hour, tzinfo=zone)
    return int(local.timestamp()) * 1000


def local_date(zone: ZoneInfo, t_ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(t_ms // 1000, zone).date()


def week_before(zone: ZoneInfo, t_ms: int) -> int:
    """The same local wall time seven days before `t_ms` (168 h, or 167/169 across a DST
    change)."""
    local = dt.datetime.fromtimestamp(t_ms // 1000, zone).replace(tzinfo=None)
    earlier = (local - dt.timedelta(days=7)).replace(tzinfo=zone)
    return int(earlier.timestamp()) * 1000 + t_ms % 1000
