"""The `[analytics]` config section: grid, gap tolerances, billing instant, validation rules
(declarative schema).

Every problem is reported at once with the other sections' (the CLI exits 2); a meter named
here must be a configured `[[meter]]`. Rules: `[analytics.rules.default]` for every meter,
`[analytics.rules.<group>]` for the meters of `[analytics.groups] <group> = [ids]`,
`[analytics.rules.<meter id>]` for one meter; a meter's rules are the default's, overridden by
its groups' (in the order the groups are declared), overridden by its own. Alarm thresholds
layer the same way under `[analytics.alarms.*]`. The balance tree: `[analytics.balance.<meter>]`
with `children` (meter ids), `threshold_percent` and `alarm_after` (intervals in a row).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from core.quantities import is_known
from core.schema import Field, Problems, in_range, one_of, opt, positive, validate_table
from gateway.analytics.alarms import AlarmLimits
from gateway.analytics.balance import Node
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
    "alarms": opt(dict, {}),
    "balance": opt(dict, {}),
    "balance_quantity": opt(str, "import_active_energy"),
    # intervals, snapshots, flags and balance results older than this go once delivered
    "keep_days": opt(int, 400, in_range(1, 3660)),
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

ALARM_FIELDS: dict[str, Field] = {
    "contracted_power_w": _dec(_positive_decimal_check),
    "demand": opt(str, None, one_of("block", "sliding")),
    "cos_phi_min": _dec(_positive_decimal_check),
    "reactive_period": opt(str, None, one_of("day", "month")),
    "voltage_low": _dec(),
    "voltage_high": _dec(),
    "voltage_for_s": opt(int, None, positive),
    "phase_loss_v": _dec(_positive_decimal_check),
    "imbalance_percent": _dec(_positive_decimal_check),
}

NODE_FIELDS: dict[str, Field] = {
    "children": opt(list, None),
    "threshold_percent": opt((int, str), Decimal(5), _positive_decimal_check, _decimal),
    "alarm_after": opt(int, 4, in_range(1, 10_000)),
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
    alarms: Mapping[str, AlarmLimits] = field(default_factory=dict)  # meter id -> thresholds
    balance: tuple[Node, ...] = ()
    balance_quantity: str = "import_active_energy"
    keep_days: int = 400

    def alarms_of(self, meter_id: str) -> AlarmLimits:
        return self.alarms.get(meter_id) or AlarmLimits()

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
    tables = _rule_tables(values.get("rules") or {}, RULE_FIELDS, "analytics.rules", groups,
                          meter_ids, problems)
    alarm_tables = _rule_tables(values.get("alarms") or {}, ALARM_FIELDS, "analytics.alarms",
                                groups, meter_ids, problems)
    nodes = _nodes(values.get("balance") or {}, meter_ids, problems)
    if len(problems.lines) > before:
        return None
    default = _apply(Rules(), tables.get("default", {}))
    per_meter = {m: _layers(default, tables, groups, m) for m in meter_ids}
    alarm_default = _apply(AlarmLimits(), alarm_tables.get("default", {}))
    alarms = {m: _layers(alarm_default, alarm_tables, groups, m) for m in meter_ids}
    return AnalyticsSettings(
        timezone=timezone, grid=values["grid"], measured_gap_s=values["measured_gap_s"],
        max_interpolate_s=values["max_interpolate_s"], meters=frozenset(meters),
        billing_day=values["billing_day"], billing_hour=values["billing_hour"],
        rules=per_meter, default_rules=default, commodities=dict(meter_ids), alarms=alarms,
        balance=nodes, balance_quantity=values["balance_quantity"],
        keep_days=values["keep_days"])


def _layers(base: Any, tables: Mapping[str, Mapping[str, Any]],
            groups: Mapping[str, frozenset[str]], meter: str) -> Any:
    """The default, overridden by the meter's groups in order, overridden by its own table."""
    for name, members in groups.items():
        if meter in members and name in tables:
            base = _apply(base, tables[name])
    return _apply(base, tables.get(meter, {}))


def _nodes(raw: dict[str, Any], commodities: Mapping[str, str], problems: Problems
           ) -> tuple[Node, ...]:
    nodes = []
    for meter, table in raw.items():
        where = f"analytics.balance.{meter}"
        if meter not in commodities:
            problems.add(where, "is not a configured [[meter]] id")
        values = validate_table(table, NODE_FIELDS, where, problems)
        children = values.get("children")
        if not isinstance(children, list) or not children:
            problems.add(f"{where}.children", "must be a non-empty array of meter ids")
            continue
        for i, child in enumerate(children):
            if child not in commodities or child == meter:
                problems.add(f"{where}.children[{i}]",
                             f"{child!r} is not another configured [[meter]] id")
        mixed = any(commodities.get(c) != commodities.get(meter) for c in children)
        nodes.append(Node(meter, tuple(children), values["threshold_percent"],
                          values["alarm_after"], mixed))
    return tuple(nodes)


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


def _rule_tables(raw: dict[str, Any], fields: Mapping[str, Field], path: str,
                 groups: Mapping[str, Any], meter_ids: Collection[str],
                 problems: Problems) -> dict[str, dict[str, Any]]:
    tables: dict[str, dict[str, Any]] = {}
    for name, table in raw.items():
        where = f"{path}.{name}"
        if name != "default" and name not in groups and name not in meter_ids:
            problems.add(where, "names neither 'default', a group of [analytics.groups] nor "
                                "a configured [[meter]] id")
        given = {k: v for k, v in validate_table(table, fields, where, problems).items()
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


def _apply(rules: Any, given: Mapping[str, Any]) -> Any:
    if "limits" in given:
        given = {**given, "limits": {**rules.limits, **given["limits"]}}
    return replace(rules, **given)
