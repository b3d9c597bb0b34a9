"""Report by exception: which stored reading sets get an outbox row (are sent upstream).

Every reading is stored; the store asks `ExceptionReport.wants(reading)` whether a set gets its
outbox row. A set is sent when its meter has sent nothing yet (since start), when the meter's
`max_silence_s` has passed since its last sent set, when a quantity with a deadband is new, or
when one moved out of its deadband around the value last *sent*. Quantities without a deadband
(cumulative energy registers, typically) never decide alone: they ride along with the next set
sent, which carries their newest value, so no energy is lost upstream. A meter's own dated
records (FLAG_METER_RECORD) and text values are always sent.

Config (`[report_by_exception]`, docs/config.md): `max_silence_s` and `deadbands` (quantity ->
`{absolute = "0.5", percent = "1"}`, exact decimal text) for every meter, overridden per
register profile (`profiles.NAME`) and per meter (`meters.ID`), meter over profile over default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from core.numbers import OutOfRange, exact_decimal
from core.quantities import is_known
from core.schema import Problems, in_range, opt, validate_table
from storage.records import FLAG_METER_RECORD, ReadingSet

DEFAULT_MAX_SILENCE_S: Final[int] = 900
_HUNDRED: Final = Decimal(100)
_FIELDS = {"max_silence_s": opt(int, None, in_range(1, 7 * 86400)),
           "deadbands": opt(dict, {})}
_TOP = {**_FIELDS, "enabled": opt(bool, True), "profiles": opt(dict, {}), "meters": opt(dict, {})}


@dataclass(frozen=True, slots=True)
class Deadband:
    """A change is reported when it exceeds the larger of `absolute` and `percent` % of the
    value last sent (an absolute band keeps a percent band from shrinking to nothing at 0)."""

    absolute: Decimal = Decimal(0)
    percent: Decimal = Decimal(0)

    def moved(self, sent: Decimal, now: Decimal) -> bool:
        return abs(now - sent) > max(self.absolute, abs(sent) * self.percent / _HUNDRED)


@dataclass(frozen=True, slots=True)
class Rule:
    max_silence_ms: int
    deadbands: Mapping[str, Deadband]


@dataclass(frozen=True)
class ReportSettings:
    default: Rule
    profiles: Mapping[str, Rule] = field(default_factory=dict)
    meters: Mapping[str, Rule] = field(default_factory=dict)


def _band(raw: Any, where: str, problems: Problems) -> Deadband | None:
    if not isinstance(raw, dict) or not raw or set(raw) - {"absolute", "percent"}:
        problems.add(where, "must be a table with `absolute` and/or `percent` (decimal text)")
        return None
    parsed: dict[str, Decimal] = {}
    for key, value in raw.items():
        try:
            number = exact_decimal(value) if isinstance(value, str) else None
        except OutOfRange:
            number = None
        if number is None or number < 0:
            problems.add(f"{where}.{key}", f"must be a decimal string >= 0 like \"0.5\", "
                                           f"got {value!r}")
            continue
        parsed[key] = number
    return Deadband(**parsed)


def _rule(raw: Any, where: str, base: Rule, problems: Problems) -> Rule:
    table = validate_table(raw, _FIELDS, where, problems)
    bands = dict(base.deadbands)
    for quantity, spec in (table.get("deadbands") or {}).items():
        if not is_known(quantity):
            problems.add(f"{where}.deadbands.{quantity}", "not a quantity name "
                                                          "(core/quantities.py)")
            continue
        band = _band(spec, f"{where}.deadbands.{quantity}", problems)
        if band is not None:
            bands[quantity] = band
    silence = table.get("max_silence_s")
    return Rule(base.max_silence_ms if silence is None else silence * 1000, bands)


def report_section(section: Any, profile_of: Mapping[str, str], problems: Problems,
                   where: str = "report_by_exception") -> ReportSettings | None:
    """The validated section, a rule resolved for every configured meter (`profile_of`: meter
    id -> its register profile); None when absent or `enabled = false` (every set is sent)."""
    if section is None:
        return None
    top = validate_table(section, _TOP, where, problems)
    base = _rule({k: section[k] for k in _FIELDS if k in section}, where,
                 Rule(DEFAULT_MAX_SILENCE_S * 1000, {}), problems)
    profiles = {name: _rule(raw, f"{where}.profiles.{name}", base, problems)
                for name, raw in (top.get("profiles") or {}).items()}
    own = top.get("meters") or {}
    for meter_id in own:
        if meter_id not in profile_of:
            problems.add(f"{where}.meters.{meter_id}", "no such meter in the config")
    rules = {}
    for meter_id, profile in profile_of.items():
        rule = profiles.get(profile, base)
        if meter_id in own:
            rule = _rule(own[meter_id], f"{where}.meters.{meter_id}", rule, problems)
        rules[meter_id] = rule
    return ReportSettings(base, profiles, rules) if top.get("enabled", True) else None


@dataclass
class _Sent:
    ts_ms: int
    values: dict[str, Decimal]


class ExceptionReport:
    """The predicate the store asks per reading set; holds the last sent values per meter."""

    def __init__(self, settings: ReportSettings) -> None:
        self._rules = dict(settings.meters)
        self._default = settings.default
        self._sent: dict[str, _Sent] = {}
        self.sets_seen = 0
        self.sets_sent = 0

    def rule(self, meter_id: str) -> Rule:
        return self._rules.get(meter_id, self._default)

    def wants(self, reading: ReadingSet) -> bool:
        """True: this set gets its outbox row (and becomes the reference of its meter)."""
        self.sets_seen += 1
        if reading.flags & FLAG_METER_RECORD:
            self.sets_sent += 1
            return True  # the meter's own records: history, never filtered
        numbers = {v.quantity: v.value for v in reading.values if isinstance(v.value, Decimal)}
        last = self._sent.get(reading.meter_id)
        if last is not None and not self._due(reading, numbers, last):
            return False
        self._sent[reading.meter_id] = _Sent(reading.ts_ms, numbers)
        self.sets_sent += 1
        return True

    def _due(self, reading: ReadingSet, numbers: dict[str, Decimal], last: _Sent) -> bool:
        rule = self.rule(reading.meter_id)
        if reading.ts_ms - last.ts_ms >= rule.max_silence_ms or len(numbers) < len(
                reading.values):
            return True  # silent too long, or a text value (a state): always sent
        for quantity, band in rule.deadbands.items():
            now = numbers.get(quantity)
            if now is None:
                continue
            sent = last.values.get(quantity)
            if sent is None or band.moved(sent, now):
                return True
        return False
