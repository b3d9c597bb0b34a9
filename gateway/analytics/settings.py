"""The `[analytics]` config section: grid, gap tolerances, billing instant, validation rules
(declarative schema).

Every problem is reported at once with the other sections' (the CLI exits 2); a meter named
here must be a configured `[[meter]]`. Rules: `[analytics.rules.default]` for every meter,
`[analytics.rules.<group>]` for the meters of `[analytics.groups] <group> = [ids]`,
`[analytics.rules.<meter id>]` for one meter; a meter's rules are the default's, overridden by
its groups' (in the order the groups are declared), overridden by its own.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from core.quantities import is_known
from core.schema import Field, Problems, in_range, one_of, opt, positive, validate_table
from gateway.analytics.grid import GRIDS
from gateway.analytics.validation import Rules

ANALYTICS_FIELDS: dict[str, Field] = {
    "grid": opt(str, "15min", one_of(*GRIDS)),
    # a boundary between readings at most this far apart counts as measured
    "measured_gap_s": opt(int, 300, positive),
    # across a longer gap the intervals are missing (their energy carried by the run's last)
    "max_interpolate_s": opt(int, 7 * 86_400, positive),
    "meters": opt(list, []),  # meter ids; none named: every meter
    "billing_day": opt(int, 1, in_range(1, 28)),
    "billing_hour": opt(int, 0, in_range(0, 23)),
    "groups": opt(dict, {}),
    "rules": opt(dict, {}),
}


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidOperation(repr(value))
    result = Decimal(value)
    if not result.is_finite():
        raise InvalidOperation(repr(value))
    return result


def _decimal_check(value: Any) -> str | None:
    try:
        _decimal(value)
    except (InvalidOperation, ValueError):
        return "must be an integer or a decimal string like \"2.5\""
    return None


def _positive_decimal_check(value: Any) -> str | None:
    return _decimal_check(value) or (None if _decimal(value) > 0 else "must be above 0")


def _dec(check: Any = _decimal_check) -> Field:
    return opt((int, str), None, check, _decimal)


RULE_FIELDS: dict[str, Field] = {
    "limits": opt(dict, None),  # quantity = [low, high] ("" for no bound)
    "interval_min": _dec(),
    "interval_max": _dec(),
    "backwards": opt(bool, None),
    "unit": opt(bool, None),
    "clock_unsynced": opt(bool, None),
    "spike_factor": _dec(_positive_decimal_check),
    "week_ratio": _dec(_positive_decimal_check),
    "stddev_k": _dec(_positive_decimal_check),
    "history": opt(int, None, in_range(2, 2000)),
    "min_history": opt(int, None, in_range(1, 2000)),
    "relay_open_tolerance": _dec(),
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
    rules: Mapping[str, Rules] = field(default_factory=dict)  # meter id -> its rules
    default_rules: Rules = field(default_factory=Rules)
    commodities: Mapping[str, str] = field(default_factory=dict)  # meter id -> commodity

    def covers(self, meter_id: str) -> bool:
        return not self.meters or meter_id in self.meters

    def rules_of(self, meter_id: str) -> Rules:
        return self.rules.get(meter_id, self.default_rules)


def analytics_section(section: Any, timezone: str, meter_ids: Mapping[str, str],
                      problems: Problems) -> AnalyticsSettings | None:
    """The validated section (None when absent or wrong); problems go to `problems`.
    `meter_ids`: the configured meters and their commodities."""
    if section is None:
        return None
    before = len(problems.lines)
    values = validate_table(section, ANALYTICS_FIELDS, "analytics", problems)
    meters = values.get("meters") or []
    for i, meter in enumerate(meters):
        if not isinstance(meter, str) or meter not in meter_ids:
            problems.add(f"analytics.meters[{i}]", f"{meter!r} is not a configured [[meter]] id")
    groups = _groups(values.get("groups") or {}, meter_ids, problems)
    tables = _rule_tables(values.get("rules") or {}, groups, meter_ids, problems)
    if len(problems.lines) > before:
        return None
    default = _apply(Rules(), tables.get("default", {}))
    per_meter = {}
    for meter in meter_ids:
        rules = default
        for name, members in groups.items():
            if meter in members and name in tables:
                rules = _apply(rules, tables[name])
        per_meter[meter] = _apply(rules, tables.get(meter, {}))
    return AnalyticsSettings(
        timezone=timezone, grid=values["grid"], measured_gap_s=values["measured_gap_s"],
        max_interpolate_s=values["max_interpolate_s"], meters=frozenset(meters),
        billing_day=values["billing_day"], billing_hour=values["billing_hour"],
        rules=per_meter, default_rules=default, commodities=dict(meter_ids))


def _groups(raw: dict[str, Any], meter_ids: Collection[str], problems: Problems
            ) -> dict[str, frozenset[str]]:
    groups: dict[str, frozenset[str]] = {}
    for name, members in raw.items():
        where = f"analytics.groups.{name}"
        if name == "default" or name in meter_ids:
            problems.add(where, "a group may not be named 'default' or like a meter")
        if not isinstance(members, list):
            problems.add(where, "must be an array of meter ids")
            continue
        for i, meter in enumerate(members):
            if meter not in meter_ids:
                problems.add(f"{where}[{i}]", f"{meter!r} is not a configured [[meter]] id")
        groups[name] = frozenset(m for m in members if isinstance(m, str))
    return groups


def _rule_tables(raw: dict[str, Any], groups: Mapping[str, Any], meter_ids: Collection[str],
                 problems: Problems) -> dict[str, dict[str, Any]]:
    tables: dict[str, dict[str, Any]] = {}
    for name, table in raw.items():
        where = f"analytics.rules.{name}"
        if name != "default" and name not in groups and name not in meter_ids:
            problems.add(where, "names neither 'default', a group of [analytics.groups] nor "
                                "a configured [[meter]] id")
        given = {k: v for k, v in validate_table(table, RULE_FIELDS, where, problems).items()
                 if v is not None}
        if "limits" in given:
            given["limits"] = _limits(given["limits"], f"{where}.limits", problems)
        tables[name] = given
    return tables


def _limits(raw: dict[str, Any], where: str, problems: Problems
            ) -> dict[str, tuple[Decimal | None, Decimal | None]]:
    out: dict[str, tuple[Decimal | None, Decimal | None]] = {}
    for quantity, band in raw.items():
        key = f"{where}.{quantity}"
        if not is_known(quantity):
            problems.add(key, "is not a quantity of core/quantities.py")
        if not isinstance(band, list) or len(band) != 2:
            problems.add(key, 'must be [low, high] ("" for no bound)')
            continue
        ends: list[Decimal | None] = []
        for end in band:
            if end == "":
                ends.append(None)
            elif (why := _decimal_check(end)) is not None:
                problems.add(key, why)
                ends.append(None)
            else:
                ends.append(_decimal(end))
        out[quantity] = (ends[0], ends[1])
    return out


def _apply(rules: Rules, given: Mapping[str, Any]) -> Rules:
    if "limits" in given:
        given = {**given, "limits": {**rules.limits, **given["limits"]}}
    return replace(rules, **given)
