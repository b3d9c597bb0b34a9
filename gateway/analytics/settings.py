"""The `[analytics]` config section: grid, gap tolerances, billing instant (declarative schema).

Every problem is reported at once with the other sections' (the CLI exits 2); a meter named
here must be a configured `[[meter]]`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from core.schema import Field, Problems, in_range, one_of, opt, positive, validate_table
from gateway.analytics.grid import GRIDS

ANALYTICS_FIELDS: dict[str, Field] = {
    "grid": opt(str, "15min", one_of(*GRIDS)),
    # a boundary between readings at most this far apart counts as measured
    "measured_gap_s": opt(int, 300, positive),
    # across a longer gap the intervals are missing (their energy carried by the run's last)
    "max_interpolate_s": opt(int, 7 * 86_400, positive),
    "meters": opt(list, []),  # meter ids; none named: every meter
    "billing_day": opt(int, 1, in_range(1, 28)),
    "billing_hour": opt(int, 0, in_range(0, 23)),
}


@dataclass(frozen=True, slots=True)
class AnalyticsSettings:
    timezone: str
    grid: str = "15min"
    measured_gap_s: int = 300
    max_interpolate_s: int = 7 * 86_400
    meters: frozenset[str] = frozenset()
    billing_day: int = 1
    billing_hour: int = 0

    def covers(self, meter_id: str) -> bool:
        return not self.meters or meter_id in self.meters


def analytics_section(section: Any, timezone: str, meter_ids: Collection[str],
                      problems: Problems) -> AnalyticsSettings | None:
    """The validated section (None when absent or wrong); problems go to `problems`."""
    if section is None:
        return None
    before = len(problems.lines)
    values = validate_table(section, ANALYTICS_FIELDS, "analytics", problems)
    meters = values.get("meters") or []
    for i, meter in enumerate(meters):
        if not isinstance(meter, str) or meter not in meter_ids:
            problems.add(f"analytics.meters[{i}]", f"{meter!r} is not a configured [[meter]] id")
    if len(problems.lines) > before:
        return None
    return AnalyticsSettings(
        timezone=timezone, grid=values["grid"], measured_gap_s=values["measured_gap_s"],
        max_interpolate_s=values["max_interpolate_s"], meters=frozenset(meters),
        billing_day=values["billing_day"], billing_hour=values["billing_hour"])
