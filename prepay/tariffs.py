"""Tariffs as data: flat and time-of-use prices with effective-from dates, standing charges.

Prices are integer money units (1/10000 currency unit) per whole register unit (kWh, m3);
a tariff is a list of versions, each in force from its `effective_from` (a local date or an
ISO datetime with offset) until the next. Time-of-use bands are evaluated in the site's time
zone. Band edges must sit on a 15-minute grid so an interval can be priced slot by slot.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import DecimalException, localcontext
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.numbers import BOUNDED, OutOfRange, exact_decimal
from prepay import core
from prepay.errors import TariffError

# Money text: plain digits and at most one point; longer text is refused before parsing.
_PLAIN_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
MAX_AMOUNT_CHARS = 40
_DECIMALS = 4  # money units are 1/10^4 of the currency unit (core.MONEY_SCALE)
SLOT_MS = 15 * 60 * 1000  # band edges on a 15-minute grid: one price per slot
GRID = "grid"
GENERATOR = "generator"
SOURCES = (GRID, GENERATOR)
DAY_SETS = {
    "all": frozenset(range(7)),
    "weekday": frozenset(range(5)),
    "weekend": frozenset({5, 6}),
}


def money_units(text: Any, where: str, *, maximum: int = core.MAX_AMOUNT) -> int:
    """Decimal currency text ("0.2345") -> integer money units, exactly; never via float.

    Only plain decimals are money: digits with an optional point and at most 4 decimals, no
    sign, exponent, spaces or underscores (all of which `Decimal()` would take), at most
    `maximum` money units (docs/prepay.md, "Bounds"). Anything else is a TariffError naming
    `where`, never an arithmetic or SQLite overflow further on.
    """
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise TariffError(f"{where}: amount must be a decimal string, got {text!r:.60}")
    if isinstance(text, int):
        # compared before any conversion: a 5000-digit int cannot even be turned into text
        if text < 0:
            raise TariffError(f"{where}: negative amount")
        return _at_most(text * core.MONEY_SCALE, maximum, where)
    if len(text) > MAX_AMOUNT_CHARS or not _PLAIN_DECIMAL.fullmatch(text):
        if text.startswith("-"):
            raise TariffError(f"{where}: negative amount {text[:40]!r}")
        raise TariffError(f"{where}: not a plain decimal amount (digits, optional point, "
                          f"no exponent): {text[:40]!r}")
    try:
        with localcontext(BOUNDED):
            units = exact_decimal(text).scaleb(_DECIMALS)
            fractional = units != units.to_integral_value()
    except (OutOfRange, DecimalException):
        raise TariffError(f"{where}: {text[:40]!r} is out of range") from None
    if fractional:
        raise TariffError(f"{where}: {text!r} has more than {_DECIMALS} decimals")
    return _at_most(int(units), maximum, where)


def _at_most(units: int, maximum: int, where: str) -> int:
    if units > maximum:
        raise TariffError(f"{where}: above the maximum of {money_text(maximum)}")
    return units


def money_text(units: int) -> str:
    """Integer money units -> exact decimal text with 4 decimals ("-1.2300")."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), core.MONEY_SCALE)
    return f"{sign}{whole}.{frac:04d}"


@dataclass(frozen=True, slots=True)
class Band:
    days: frozenset[int]
    start_min: int
    end_min: int  # end <= start: crosses midnight
    prices: tuple[int, int]  # (grid, generator)


@dataclass(frozen=True, slots=True)
class TariffVersion:
    effective_ms: int
    prices: tuple[int, int]  # flat (grid, generator), used where no band matches
    bands: tuple[Band, ...]
    standing_per_day: int
    source: Mapping[str, Any]  # the dict it was parsed from, for persistence and display

    def price(self, weekday: int, minute: int, source: str) -> int:
        index = SOURCES.index(source)
        for band in self.bands:
            if core.in_windows(weekday, minute, [(band.days, band.start_min, band.end_min)]):
                return band.prices[index]
        return self.prices[index]


@dataclass(frozen=True, slots=True)
class Tariff:
    tariff_id: str
    currency: str
    versions: tuple[TariffVersion, ...]  # sorted by effective_ms

    def version_at(self, ts_ms: int) -> TariffVersion | None:
        found = None
        for version in self.versions:
            if version.effective_ms <= ts_ms:
                found = version
        return found


def _minutes(text: Any, where: str) -> int:
    try:
        hours, minutes = (int(p) for p in str(text).split(":"))
    except ValueError:
        raise TariffError(f"{where}: time must be HH:MM, got {text!r}") from None
    total = hours * 60 + minutes
    if not (0 <= hours <= 24 and 0 <= minutes < 60 and total <= 1440) or total % 15:
        raise TariffError(f"{where}: {text!r} is not a time on the 15-minute grid")
    return total


def _days(spec: Any, where: str) -> frozenset[int]:
    if isinstance(spec, str) and spec in DAY_SETS:
        return DAY_SETS[spec]
    if isinstance(spec, list) and spec and all(isinstance(d, int) and 0 <= d < 7 for d in spec):
        return frozenset(spec)
    raise TariffError(f"{where}: days must be all/weekday/weekend or a list of 0..6")


def _price(text: Any, where: str) -> int:
    """A price per register unit or a standing charge per day, at most core.MAX_PRICE."""
    return money_units(text, where, maximum=core.MAX_PRICE)


def _prices(raw: Mapping[str, Any], where: str) -> tuple[int, int]:
    grid = _price(raw.get("price"), f"{where}.price")
    gen_raw = raw.get("generator_price")
    generator = grid if gen_raw is None else _price(gen_raw, f"{where}.generator_price")
    return grid, generator


def _check_keys(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(map(str, set(raw) - allowed))  # keys from a command may be of any type
    if unknown:
        raise TariffError(f"{where}: unknown keys {unknown}")


def _effective_ms(text: Any, tz: dt.tzinfo, where: str) -> int:
    try:
        if isinstance(text, str) and len(text) == 10:
            start = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), tzinfo=tz)
        else:
            start = dt.datetime.fromisoformat(str(text))
    except ValueError:
        raise TariffError(f"{where}: not an ISO date or datetime: {text!r}") from None
    if start.tzinfo is None:
        start = start.replace(tzinfo=tz)
    return int(start.timestamp() * 1000)


def version_from_dict(raw: Mapping[str, Any], tz: dt.tzinfo, where: str) -> TariffVersion:
    """One tariff version from config/command data; errors name `where` and the key."""
    _check_keys(
        raw, {"effective_from", "price", "generator_price", "standing_per_day", "bands"}, where
    )
    bands = []
    for i, band_raw in enumerate(raw.get("bands", [])):
        bwhere = f"{where}.bands[{i}]"
        if not isinstance(band_raw, Mapping):
            raise TariffError(f"{bwhere}: must be a table")
        _check_keys(band_raw, {"days", "start", "end", "price", "generator_price"}, bwhere)
        bands.append(
            Band(
                days=_days(band_raw.get("days", "all"), f"{bwhere}.days"),
                start_min=_minutes(band_raw.get("start"), f"{bwhere}.start"),
                end_min=_minutes(band_raw.get("end"), f"{bwhere}.end"),
                prices=_prices(band_raw, bwhere),
            )
        )
    return TariffVersion(
        effective_ms=_effective_ms(raw.get("effective_from"), tz, f"{where}.effective_from"),
        prices=_prices(raw, where),
        bands=tuple(bands),
        standing_per_day=_price(raw.get("standing_per_day", "0"), f"{where}.standing_per_day"),
        source=dict(raw),
    )


def tariff_from_dict(tariff_id: str, raw: Mapping[str, Any], tz: dt.tzinfo) -> Tariff:
    """A tariff: {"currency": "EUR", "versions": [{effective_from, price, ...}, ...]}."""
    where = f"tariff {tariff_id!r}"
    if not isinstance(raw, Mapping):
        raise TariffError(f"{where}: must be a table")
    _check_keys(raw, {"currency", "versions"}, where)
    currency = raw.get("currency")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise TariffError(f"{where}.currency: must be a 3-letter code, got {currency!r}")
    versions_raw = raw.get("versions")
    if not isinstance(versions_raw, list) or not versions_raw:
        raise TariffError(f"{where}.versions: must be a non-empty list")
    versions = [
        version_from_dict(v, tz, f"{where}.versions[{i}]")
        if isinstance(v, Mapping)
        else _raise(f"{where}.versions[{i}]: must be a table")
        for i, v in enumerate(versions_raw)
    ]
    versions.sort(key=lambda v: v.effective_ms)
    return Tariff(tariff_id, currency.upper(), tuple(versions))


def _raise(message: str) -> TariffVersion:
    raise TariffError(message)


class TariffBook:
    """The site's tariffs and which meter uses which; prices intervals in the site time zone."""

    def __init__(self, timezone: str, tariffs: Mapping[str, Tariff] | None = None) -> None:
        try:
            self.tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise TariffError(f"prepay.timezone: unknown time zone {timezone!r}") from None
        self.tariffs: dict[str, Tariff] = dict(tariffs or {})
        self.assignments: dict[str, str] = {}

    def set_tariff(self, tariff: Tariff) -> None:
        self.tariffs[tariff.tariff_id] = tariff

    def assign(self, meter: str, tariff_id: str) -> None:
        if tariff_id not in self.tariffs:
            raise TariffError(f"meter {meter!r}: unknown tariff {tariff_id!r}")
        self.assignments[meter] = tariff_id

    def tariff_of(self, meter: str) -> Tariff:
        tariff_id = self.assignments.get(meter)
        if tariff_id is None:
            raise TariffError(f"meter {meter!r}: no tariff assigned")
        return self.tariffs[tariff_id]

    def local(self, ts_ms: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(ts_ms / 1000, tz=self.tz)

    def price_at(self, meter: str, ts_ms: int, source: str = GRID) -> int:
        version = self._version(meter, ts_ms)
        when = self.local(ts_ms)
        return version.price(when.weekday(), when.hour * 60 + when.minute, source)

    def _version(self, meter: str, ts_ms: int) -> TariffVersion:
        tariff = self.tariff_of(meter)
        version = tariff.version_at(ts_ms)
        if version is None:
            raise TariffError(f"meter {meter!r}: tariff {tariff.tariff_id!r} not yet in force")
        return version

    def segments(
        self, meter: str, start_ms: int, end_ms: int, source: str
    ) -> list[tuple[int, int]]:
        """(duration_ms, price) pieces of [start, end): consecutive equal prices merged."""
        pieces: list[tuple[int, int]] = []
        cursor = start_ms
        while cursor < end_ms:
            slot_end = min(end_ms, (cursor // SLOT_MS + 1) * SLOT_MS)
            try:
                price = self.price_at(meter, cursor, source)
            except TariffError:
                # before the tariff's first version: priced as at the interval's end
                price = self.price_at(meter, end_ms - 1, source)
            if pieces and pieces[-1][1] == price:
                pieces[-1] = (pieces[-1][0] + slot_end - cursor, price)
            else:
                pieces.append((slot_end - cursor, price))
            cursor = slot_end
        return pieces

    def standing_for_day(self, meter: str, day: dt.date) -> int:
        """Standing charge for a local day, from the version in force at its start."""
        start = dt.datetime.combine(day, dt.time(), tzinfo=self.tz)
        return self._version(meter, int(start.timestamp() * 1000)).standing_per_day


def apportion(delta_milli: int, pieces: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spread an energy delta over priced time pieces in proportion to their durations.

    Each piece gets floor(delta * duration / total); the remainder goes to the last piece, so
    the parts always sum to `delta_milli`. Returns (energy_milli, price) pairs.
    """
    if not pieces:
        raise TariffError("cannot apportion over an empty interval")
    total = sum(d for d, _ in pieces)
    parts = [(delta_milli * d // total, p) for d, p in pieces]
    given = sum(e for e, _ in parts)
    last_energy, last_price = parts[-1]
    parts[-1] = (last_energy + delta_milli - given, last_price)
    return parts
