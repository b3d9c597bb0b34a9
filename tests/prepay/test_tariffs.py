"""Tariff parsing, time-of-use pricing in the site time zone, apportioning and exact money."""

import contextlib
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepay import core
from prepay.errors import TariffError
from prepay.tariffs import (
    GENERATOR,
    GRID,
    TariffBook,
    apportion,
    money_text,
    money_units,
    tariff_from_dict,
)

TZ = "Europe/Berlin"
TOU = {
    "currency": "EUR",
    "versions": [
        {
            "effective_from": "2026-01-01",
            "price": "0.30",
            "generator_price": "0.55",
            "standing_per_day": "0.50",
            "bands": [
                {"days": "weekday", "start": "22:00", "end": "06:00", "price": "0.20"},
                {"days": "weekend", "start": "00:00", "end": "24:00", "price": "0.18",
                 "generator_price": "0.45"},
            ],
        },
        {"effective_from": "2026-07-01", "price": "0.35", "standing_per_day": "0.60"},
    ],
}


def _ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    local = dt.datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(TZ))
    return int(local.timestamp() * 1000)


@pytest.fixture
def book() -> TariffBook:
    book = TariffBook(TZ)
    book.set_tariff(tariff_from_dict("tou", TOU, book.tz))
    book.assign("shop-1", "tou")
    return book


def test_money_units_exact() -> None:
    assert money_units("0.2345", "x") == 2345
    assert money_units("12", "x") == 120000
    assert money_units(3, "x") == 30000
    assert money_text(-12300) == "-1.2300"
    assert money_text(5) == "0.0005"
    for bad in ("0.00001", "abc", "-1", "NaN", "Infinity", 0.5, None, True):
        with pytest.raises(TariffError, match="x"):
            money_units(bad, "x")


def test_time_of_use_prices(book: TariffBook) -> None:
    monday_noon = _ms(2026, 3, 2, 12)
    assert book.price_at("shop-1", monday_noon) == 3000
    assert book.price_at("shop-1", _ms(2026, 3, 2, 23)) == 2000
    assert book.price_at("shop-1", _ms(2026, 3, 3, 5, 45)) == 2000
    assert book.price_at("shop-1", _ms(2026, 3, 7, 12)) == 1800
    assert book.price_at("shop-1", _ms(2026, 3, 7, 12), GENERATOR) == 4500
    assert book.price_at("shop-1", monday_noon, GENERATOR) == 5500


def test_effective_from_switches_version(book: TariffBook) -> None:
    assert book.price_at("shop-1", _ms(2026, 6, 30, 23, 59)) == 2000
    assert book.price_at("shop-1", _ms(2026, 7, 1, 0, 0)) == 3500
    assert book.standing_for_day("shop-1", dt.date(2026, 6, 30)) == 5000
    assert book.standing_for_day("shop-1", dt.date(2026, 7, 1)) == 6000
    with pytest.raises(TariffError, match="not yet in force"):
        book.price_at("shop-1", _ms(2025, 12, 31, 23))


def test_dst_night_uses_local_time(book: TariffBook) -> None:
    # clocks jump 02:00 -> 03:00 in Berlin on Sunday 29 March 2026: 04:30 UTC on Tuesday is
    # 06:30 local (day price), where a fixed +01:00 offset would wrongly say 05:30 (night)
    utc_0430 = int(dt.datetime(2026, 3, 31, 4, 30, tzinfo=dt.UTC).timestamp() * 1000)
    assert book.price_at("shop-1", utc_0430) == 3000
    assert book.price_at("shop-1", utc_0430 - 3600_000) == 2000
    assert book.price_at("shop-1", _ms(2026, 3, 29, 3, 30)) == 1800


def test_segments_cover_interval_and_merge(book: TariffBook) -> None:
    start, end = _ms(2026, 3, 2, 21, 10), _ms(2026, 3, 2, 22, 40)
    pieces = book.segments("shop-1", start, end, GRID)
    assert pieces == [(50 * 60000, 3000), (40 * 60000, 2000)]


def test_unassigned_and_unknown() -> None:
    book = TariffBook(TZ)
    with pytest.raises(TariffError, match="'m9'"):
        book.price_at("m9", 0)
    with pytest.raises(TariffError, match="unknown tariff"):
        book.assign("m9", "nope")
    with pytest.raises(TariffError, match="Mars/Base"):
        TariffBook("Mars/Base")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"currency": "EURO", "versions": [{}]}, "currency"),
        ({"currency": "EUR", "versions": []}, "versions"),
        ({"currency": "EUR", "versions": [{"price": "1"}]}, "effective_from"),
        ({"currency": "EUR", "versions": [{"effective_from": "2026-01-01"}]}, "price"),
        ({"currency": "EUR", "colour": 1, "versions": [{}]}, "colour"),
        ({"currency": "EUR", "versions": [{"effective_from": "2026-01-01", "price": "1",
          "bands": [{"start": "22:10", "end": "06:00", "price": "1"}]}]}, "bands[0].start"),
        ({"currency": "EUR", "versions": [{"effective_from": "2026-01-01", "price": "1",
          "bands": [{"days": [9], "start": "22:00", "end": "06:00", "price": "1"}]}]}, "days"),
        ({"currency": "EUR", "versions": ["x"]}, "versions[0]"),
        # found by make fuzz: a signed tariff.set's CBOR map may have keys of mixed types
        ({"currency": "EUR", "versions": [{"effective_from": "2026-01-01", 238: "x",
                                           "price": "1"}]}, "238"),
    ],
)
def test_bad_tariffs_name_the_key(raw: dict, fragment: str) -> None:
    with pytest.raises(TariffError) as err:
        tariff_from_dict("t1", raw, ZoneInfo(TZ))
    assert fragment in str(err.value) and "'t1'" in str(err.value)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(max_size=8) | st.integers() | st.booleans(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200)
@given(JSONISH)
def test_garbage_tariff_raises_only_tariff_error(raw: object) -> None:
    with contextlib.suppress(TariffError):
        tariff_from_dict("g", raw, ZoneInfo(TZ))  # type: ignore[arg-type]


@settings(max_examples=200)
@given(st.integers(0, 10**9), st.lists(st.tuples(st.integers(1, 10**8), st.integers(0, 10**5)),
                                       min_size=1, max_size=20))
def test_apportion_conserves_energy(delta: int, pieces: list[tuple[int, int]]) -> None:
    parts = apportion(delta, pieces)
    assert sum(e for e, _ in parts) == delta
    assert all(e >= 0 for e, _ in parts)
    assert [p for _, p in parts] == [p for _, p in pieces]


def test_million_readings_no_drift() -> None:
    # a million 1 Wh readings at 0.2345/kWh: exactly 234.5 money units... in total, no drift
    carry = charged = 0
    charge_for = core.charge_for
    for _ in range(1_000_000):
        charge, carry = charge_for(1, 2345, carry)
        charged += charge
    assert (charged, carry) == (2_345_000, 0)
