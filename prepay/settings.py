"""The `[prepay]` config section: site settings and per-meter settings, validated at start.

Every error names the key (`prepay.meters.shop-1.relay`); unknown keys are errors. Amounts
are decimal strings in currency units ("5.00"), held as integer money units (1/10000).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prepay import core
from prepay.errors import PrepayError, TariffError
from prepay.tariffs import DAY_SETS, Tariff, TariffBook, money_units, tariff_from_dict

COMMODITIES = ("electricity", "water", "heat")
GENERATOR_SOURCES = ("none", "input", "register")

SITE_KEYS = {
    "timezone", "currency", "debt_share_percent", "emergency_credit", "reconnect",
    "reconnect_threshold", "button_input", "friendly_hours", "holidays", "tariffs", "meters",
    "voucher_keys",
}
METER_KEYS = {
    "commodity", "tariff", "mode", "warn_limit", "relay", "alarm", "feedback_input",
    "cover_input", "generator", "generator_input", "grid_register", "generator_register",
    "max_power_w", "trip_after_s", "retry_delay_s", "max_trips", "breaker",
}
BREAKERS = ("board", "meter")  # the supply relay: a board output, or the meter's own breaker


@dataclass(frozen=True, slots=True)
class MeterSettings:
    meter_id: str
    commodity: str
    tariff: str
    mode: str
    warn_limit: int
    relay: str
    alarm: str | None = None
    feedback_input: str | None = None  # active = contactor closed
    cover_input: str | None = None  # active = cover opened
    generator: str = "none"
    generator_input: str | None = None
    grid_register: str | None = None  # tariff register priced at grid price (register mode)
    generator_register: str | None = None
    max_power_w: int = 0
    trip_after_s: int = 60
    retry_delay_s: int = 300
    max_trips: int = 3
    # "meter": the supply relay is the meter's own breaker (its protocol's `breakers`), named
    # `relay` (default "breaker:ID"); the feedback defaults to the state the meter reports
    breaker: str = "board"


@dataclass(frozen=True, slots=True)
class PrepaySettings:
    timezone: str
    currency: str
    debt_share_bp: int
    emergency_credit: int
    reconnect: str
    reconnect_threshold: int
    button_input: str | None
    friendly_windows: tuple[tuple[frozenset[int], int, int], ...]
    holidays: frozenset[str]
    tariffs: Mapping[str, Tariff]
    meters: Mapping[str, MeterSettings] = field(default_factory=dict)
    voucher_keys: Mapping[str, str] = field(default_factory=dict)  # kid -> public key PEM path

    def tariff_book(self) -> TariffBook:
        book = TariffBook(self.timezone, self.tariffs)
        for meter in self.meters.values():
            book.assign(meter.meter_id, meter.tariff)
        return book


def _get(raw: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str,
         default: Any = ...) -> Any:
    if key not in raw:
        if default is ...:
            raise PrepayError(f"{where}.{key}: missing")
        return default
    value = raw[key]
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise PrepayError(f"{where}.{key}: expected {kind}, got {value!r}")
    return value


def _unknown(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(raw) - allowed)
    if extra:
        raise PrepayError(f"{where}: unknown keys {extra}")


def _windows(raw: Any, where: str) -> tuple[tuple[frozenset[int], int, int], ...]:
    if not isinstance(raw, list):
        raise PrepayError(f"{where}: must be a list of {{days, start, end}} tables")
    out = []
    for i, item in enumerate(raw):
        iwhere = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise PrepayError(f"{iwhere}: must be a table")
        _unknown(item, {"days", "start", "end"}, iwhere)
        days = item.get("days", "all")
        if isinstance(days, str) and days in DAY_SETS:
            day_set = DAY_SETS[days]
        elif isinstance(days, list) and all(isinstance(d, int) and 0 <= d < 7 for d in days):
            day_set = frozenset(days)
        else:
            raise PrepayError(f"{iwhere}.days: all/weekday/weekend or a list of 0..6")
        out.append((day_set, _hhmm(item.get("start"), f"{iwhere}.start"),
                    _hhmm(item.get("end"), f"{iwhere}.end")))
    return tuple(out)


def _hhmm(text: Any, where: str) -> int:
    try:
        hours, minutes = (int(p) for p in str(text).split(":"))
    except ValueError:
        raise PrepayError(f"{where}: time must be HH:MM, got {text!r}") from None
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or hours * 60 + minutes > 1440:
        raise PrepayError(f"{where}: {text!r} is not a time of day")
    return hours * 60 + minutes


def _amount(raw: Mapping[str, Any], key: str, where: str, default: str) -> int:
    """An amount, limit or threshold: a plain decimal up to core.MAX_AMOUNT money units."""
    try:
        return money_units(raw.get(key, default), f"{where}.{key}")
    except TariffError as exc:
        raise PrepayError(str(exc)) from None


def _int_in(raw: Mapping[str, Any], key: str, where: str, default: int,
            bounds: tuple[int, int]) -> int:
    """An integer setting inside its documented bounds (docs/prepay.md, "Bounds")."""
    value: int = _get(raw, key, int, where, default)
    low, high = bounds
    if not low <= value <= high:
        raise PrepayError(f"{where}.{key}: must be {low}..{high}, got {value}")
    return value


def _meter(meter_id: str, raw: Any, site_tariffs: Mapping[str, Tariff]) -> MeterSettings:
    where = f"prepay.meters.{meter_id}"
    if not isinstance(raw, Mapping):
        raise PrepayError(f"{where}: must be a table")
    _unknown(raw, METER_KEYS, where)
    commodity = _get(raw, "commodity", str, where, "electricity")
    mode = _get(raw, "mode", str, where, core.MODE_AUTOMATIC)
    generator = _get(raw, "generator", str, where, "none")
    tariff = _get(raw, "tariff", str, where)
    for key, value, allowed in (("commodity", commodity, COMMODITIES), ("mode", mode, core.MODES),
                                ("generator", generator, GENERATOR_SOURCES)):
        if value not in allowed:
            raise PrepayError(f"{where}.{key}: {value!r} is not one of {list(allowed)}")
    if tariff not in site_tariffs:
        raise PrepayError(f"{where}.tariff: unknown tariff {tariff!r}")
    breaker = _get(raw, "breaker", str, where, "board")
    if breaker not in BREAKERS:
        raise PrepayError(f"{where}.breaker: {breaker!r} is not one of {list(BREAKERS)}")
    own = f"breaker:{meter_id}" if breaker == "meter" else None
    settings = MeterSettings(
        meter_id=meter_id, commodity=commodity, tariff=tariff, mode=mode,
        warn_limit=_amount(raw, "warn_limit", where, "0"),
        relay=_get(raw, "relay", str, where, own or ...),
        alarm=_get(raw, "alarm", str, where, None),
        feedback_input=_get(raw, "feedback_input", str, where, own),
        cover_input=_get(raw, "cover_input", str, where, None),
        generator=generator,
        generator_input=_get(raw, "generator_input", str, where, None),
        grid_register=_get(raw, "grid_register", str, where, None),
        generator_register=_get(raw, "generator_register", str, where, None),
        max_power_w=_int_in(raw, "max_power_w", where, 0, (0, core.MAX_POWER_W)),
        trip_after_s=_int_in(raw, "trip_after_s", where, 60, (0, core.MAX_DELAY_S)),
        retry_delay_s=_int_in(raw, "retry_delay_s", where, 300, (0, core.MAX_DELAY_S)),
        max_trips=_int_in(raw, "max_trips", where, 3, (1, core.MAX_TRIPS)),
        breaker=breaker,
    )
    if generator == "input" and not settings.generator_input:
        raise PrepayError(f"{where}.generator_input: required when generator = 'input'")
    if generator == "register" and not (settings.grid_register and settings.generator_register):
        raise PrepayError(f"{where}.grid_register/generator_register: required for 'register'")
    return settings


def settings_from_config(raw: Any) -> PrepaySettings:
    """Validate the whole `[prepay]` section; PrepayError names the first bad key."""
    where = "prepay"
    if not isinstance(raw, Mapping):
        raise PrepayError("prepay: must be a table")
    _unknown(raw, SITE_KEYS, where)
    timezone = _get(raw, "timezone", str, where)
    try:
        book = TariffBook(timezone)
        tariffs_raw = _get(raw, "tariffs", dict, where, {})
        tariffs = {tid: tariff_from_dict(tid, t, book.tz) for tid, t in tariffs_raw.items()}
    except TariffError as exc:
        raise PrepayError(f"prepay.tariffs: {exc}") from None
    share = raw.get("debt_share_percent", 50)
    if isinstance(share, bool) or not isinstance(share, int) or not 0 <= share <= 100:
        raise PrepayError(f"prepay.debt_share_percent: an integer 0..100, got {share!r}")
    reconnect = _get(raw, "reconnect", str, where, core.RECONNECT_AUTO)
    if reconnect not in (core.RECONNECT_AUTO, core.RECONNECT_BUTTON):
        raise PrepayError(f"prepay.reconnect: 'automatic' or 'button', got {reconnect!r}")
    holidays = _get(raw, "holidays", list, where, [])
    for i, day in enumerate(holidays):
        try:
            dt.date.fromisoformat(str(day))
        except ValueError:
            raise PrepayError(f"prepay.holidays[{i}]: not an ISO date: {day!r}") from None
    button = _get(raw, "button_input", str, where, None)
    if reconnect == core.RECONNECT_BUTTON and not button:
        raise PrepayError("prepay.button_input: required when reconnect = 'button'")
    meters_raw = _get(raw, "meters", dict, where, {})
    voucher_keys = _get(raw, "voucher_keys", dict, where, {})
    for kid, path in voucher_keys.items():
        if not isinstance(path, str) or not path or not kid:
            raise PrepayError(f"prepay.voucher_keys.{kid}: must be a public key file path")
    return PrepaySettings(
        timezone=timezone,
        currency=_get(raw, "currency", str, where, "EUR"),
        debt_share_bp=share * 100,
        emergency_credit=_amount(raw, "emergency_credit", where, "0"),
        reconnect=reconnect,
        reconnect_threshold=_amount(raw, "reconnect_threshold", where, "0"),
        button_input=button,
        friendly_windows=_windows(raw.get("friendly_hours", []), "prepay.friendly_hours"),
        holidays=frozenset(str(d) for d in holidays),
        tariffs=tariffs,
        meters={mid: _meter(mid, m, tariffs) for mid, m in meters_raw.items()},
        voucher_keys=dict(voucher_keys),
    )
