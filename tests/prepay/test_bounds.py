"""Bounded money and numbers from outside: parsing, config keys, command arguments.

Each bound is tested on both sides: the maximum itself is accepted, one step above is refused
with its reason (a TariffError naming the key, a config error naming the key, `bad_amount`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.cli.main import main
from prepay import core
from prepay.errors import CommandRefusedError, PrepayError, TariffError
from prepay.settings import settings_from_config
from prepay.tariffs import money_text, money_units
from tests.prepay.rig import Rig, site_config

MAX_TEXT = "1000000000"  # core.MAX_AMOUNT in currency units
ABOVE_MAX_TEXT = "1000000000.0001"
MAX_PRICE_TEXT = "1000000"  # core.MAX_PRICE in currency units
ABOVE_PRICE_TEXT = "1000000.0001"
HOSTILE = ["1E+999999", "1e30", "1e3", "1E-2", "+1", " 1", "1 ", "1_000", "1.", ".5", "0x10",
           "NaN", "sNaN", "-Infinity", "Infinity", "1" * 41, "9" * 35, "١٢", "1\n"]


# --- money_units -----------------------------------------------------------------------------

def test_money_maximum_both_sides() -> None:
    assert money_units(MAX_TEXT, "x") == core.MAX_AMOUNT == 10**13
    assert money_units(10**9, "x") == core.MAX_AMOUNT
    for above in (ABOVE_MAX_TEXT, "1000000001", 10**9 + 1):
        with pytest.raises(TariffError, match="x: above the maximum"):
            money_units(above, "x")
    assert money_units(MAX_PRICE_TEXT, "p", maximum=core.MAX_PRICE) == core.MAX_PRICE
    with pytest.raises(TariffError, match="p: above the maximum"):
        money_units(ABOVE_PRICE_TEXT, "p", maximum=core.MAX_PRICE)


@pytest.mark.parametrize("text", HOSTILE)
def test_exponents_and_non_plain_decimals_refused(text: str) -> None:
    with pytest.raises(TariffError, match=r"^x: "):
        money_units(text, "x")


@given(st.integers(min_value=0, max_value=core.MAX_AMOUNT))
def test_every_amount_in_bounds_round_trips(units: int) -> None:
    assert money_units(money_text(units), "x") == units


@given(st.one_of(
    st.text(max_size=60),
    st.from_regex(r"\A-?[0-9]{0,12}(\.[0-9]{0,6})?([eE][+-]?[0-9]{1,7})?\Z"),
    st.integers(),
    st.floats(allow_nan=True),
    st.none(),
    st.booleans(),
))
@example("1E+999999")
@example("1e30")
@example(10**5000)  # above Python's int-to-text limit: must be refused before any conversion
@example("9" * 34 + ".9")
@example("0." + "0" * 33 + "1")
def test_money_units_never_raises_anything_else(value: Any) -> None:
    """Whatever arrives, money_units gives bounded units or a TariffError, never Overflow."""
    try:
        units = money_units(value, "x")
    except TariffError as exc:
        assert str(exc).startswith("x: ")
        return
    assert isinstance(units, int) and 0 <= units <= core.MAX_AMOUNT


# --- config -----------------------------------------------------------------------------------

def _with_meter(**keys: Any) -> dict[str, Any]:
    meter = {"tariff": "flat", "relay": "r", **keys}
    return site_config(meters={"m": meter})


def _with_price(key: str, value: str, band: bool = False) -> dict[str, Any]:
    version: dict[str, Any] = {"effective_from": "2026-01-01", "price": "0.30"}
    if band:
        version["bands"] = [{"days": "all", "start": "00:00", "end": "06:00", "price": "0.1",
                             key: value}]
    else:
        version[key] = value
    tou = site_config()["tariffs"]["tou"]
    return site_config(tariffs={"flat": {"currency": "EUR", "versions": [version]}, "tou": tou})


CONFIG_BOUNDS = [
    # (build(value), at the maximum, above it, fragment the error must name)
    (lambda v: site_config(emergency_credit=v), MAX_TEXT, ABOVE_MAX_TEXT, "emergency_credit"),
    (lambda v: site_config(reconnect_threshold=v), MAX_TEXT, "1e30", "reconnect_threshold"),
    (lambda v: _with_meter(warn_limit=v), MAX_TEXT, ABOVE_MAX_TEXT, "meters.m.warn_limit"),
    (lambda v: _with_meter(warn_limit=v), MAX_TEXT, "1E+999999", "meters.m.warn_limit"),
    (lambda v: _with_price("price", v), MAX_PRICE_TEXT, ABOVE_PRICE_TEXT, "versions[0].price"),
    (lambda v: _with_price("generator_price", v), MAX_PRICE_TEXT, ABOVE_PRICE_TEXT,
     "versions[0].generator_price"),
    (lambda v: _with_price("standing_per_day", v), MAX_PRICE_TEXT, ABOVE_PRICE_TEXT,
     "versions[0].standing_per_day"),
    (lambda v: _with_price("price", v, band=True), MAX_PRICE_TEXT, "1e7",
     "bands[0].price"),
    (lambda v: _with_meter(max_power_w=v), core.MAX_POWER_W, core.MAX_POWER_W + 1,
     "meters.m.max_power_w"),
    (lambda v: _with_meter(max_power_w=v), 0, -1, "meters.m.max_power_w"),
    (lambda v: _with_meter(trip_after_s=v), core.MAX_DELAY_S, core.MAX_DELAY_S + 1,
     "meters.m.trip_after_s"),
    (lambda v: _with_meter(retry_delay_s=v), core.MAX_DELAY_S, 2**63, "meters.m.retry_delay_s"),
    (lambda v: _with_meter(max_trips=v), core.MAX_TRIPS, core.MAX_TRIPS + 1, "meters.m.max_trips"),
    (lambda v: _with_meter(max_trips=v), 1, 0, "meters.m.max_trips"),
]


@pytest.mark.parametrize(("build", "at_max", "above", "fragment"), CONFIG_BOUNDS)
def test_config_bounds_both_sides(build: Any, at_max: Any, above: Any, fragment: str) -> None:
    settings_from_config(build(at_max))
    with pytest.raises(PrepayError) as err:
        settings_from_config(build(above))
    assert fragment in str(err.value)
    assert "Overflow" not in str(err.value)


SITE = """
gateway_id = "gw-test"
timezone = "Europe/Paris"

[storage]
path = "gw.db"

[[bus]]
id = "tcp-1"
kind = "tcp"
host = "127.0.0.1"
tcp_port = 1502

[[meter]]
id = "shop-1"
bus = "tcp-1"
protocol = "modbus"
address = 1
profile = "circutor_cvm_c10"

[prepay]
timezone = "Europe/Paris"

[prepay.tariffs.flat]
currency = "EUR"
versions = [ { effective_from = "2026-01-01", price = "PRICE" } ]

[prepay.meters.shop-1]
tariff = "flat"
relay = "relay-shop-1"
max_power_w = POWER
"""


@pytest.mark.parametrize(
    ("price", "power", "key"),
    [
        (ABOVE_PRICE_TEXT, "0", "prepay.tariffs"),  # the tariff path follows the key
        ("1e30", "0", "versions[0].price"),
        ("0.30", str(core.MAX_POWER_W + 1), "prepay.meters.shop-1.max_power_w"),
    ],
)
def test_check_config_exits_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             price: str, power: str, key: str) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE.replace("PRICE", MAX_PRICE_TEXT).replace("POWER",
                                                                  str(core.MAX_POWER_W)))
    assert main(["check-config", str(path)]) == 0, capsys.readouterr()
    capsys.readouterr()
    path.write_text(SITE.replace("PRICE", price).replace("POWER", power))
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert key in err and str(path) in err and "Overflow" not in err


# --- commands ---------------------------------------------------------------------------------

@pytest.mark.parametrize("amount", ["1E+999999", "1e30", ABOVE_MAX_TEXT, 10**30,
                                    pytest.param(10**5000, id="10**5000")])
async def test_topup_above_bound_refused_bad_amount(rig: Rig, amount: Any) -> None:
    with pytest.raises(CommandRefusedError) as err:
        await rig.commands.credit_topup({"meter": "shop-1", "amount": amount, "txid": "t"}, None)
    assert err.value.reason == "bad_amount"
    assert rig.account("shop-1").balance == 0


async def test_topup_at_bound_credited(rig: Rig) -> None:
    result = await rig.topup("shop-1", MAX_TEXT, "t-max")
    assert result["credited"] is True
    assert rig.account("shop-1").loaded_total == core.MAX_AMOUNT


@pytest.mark.parametrize(("limit", "ok"), [(MAX_TEXT, True), (ABOVE_MAX_TEXT, False),
                                           ("1e30", False), (10**19, False)])
async def test_warn_limit_bound_both_sides(rig: Rig, limit: Any, ok: bool) -> None:
    args = {"meter": "shop-1", "warn_limit": limit}
    if ok:
        result = await rig.commands.prepay_limit(args, None)
        assert result["warn_limit"] == core.MAX_AMOUNT
        return
    with pytest.raises(CommandRefusedError) as err:
        await rig.commands.prepay_limit(args, None)
    assert err.value.reason == "bad_warn_limit"


@pytest.mark.parametrize(("price", "ok"), [(MAX_PRICE_TEXT, True), (ABOVE_PRICE_TEXT, False),
                                           ("1e30", False), (10**30, False)])
async def test_tariff_set_price_bound_both_sides(rig: Rig, price: Any, ok: bool) -> None:
    definition = {"currency": "EUR", "versions": [{"effective_from": "2026-01-01",
                                                   "price": price}]}
    args = {"tariff": "dear", "definition": definition, "meters": ["shop-1"]}
    if ok:
        assert (await rig.commands.tariff_set(args, None))["versions"] == 1
        return
    with pytest.raises(CommandRefusedError) as err:
        await rig.commands.tariff_set(args, None)
    assert err.value.reason == "bad_tariff"


def test_stored_tariff_beyond_bounds_is_skipped_at_start(rig: Rig) -> None:
    """A tariff an older version stored unbounded keeps the config tariff in force."""
    from storage import ledger

    bad = {"currency": "EUR", "versions": [{"effective_from": "2026-01-01", "price": "1e30"}]}
    with rig.store.transaction() as tx:
        ledger.save_tariff(tx, "old", bad, rig.now)
        ledger.save_setting(tx, "shop-1", "tariff_id", "old", rig.now)
    rig.reopen()
    rig.read("shop-1", "0")
    rig.advance(60)
    rig.read("shop-1", "1")
    assert rig.account("shop-1").charged_total == 3000  # 1 kWh at the config's 0.30


# --- register values and charges (bounded in the portable core) -------------------------------

def test_register_beyond_bound_is_unreadable_not_an_overflow(rig: Rig) -> None:
    """A 22-digit register value once overflowed the SQLite mark and aborted the readings'
    transaction; now it is `register_unreadable` and charging goes on from the last mark."""
    rig.read("shop-1", "0")
    rig.advance(60)
    rig.read("shop-1", "1" + "0" * 21)
    assert "register_unreadable" in rig.kinds("shop-1")
    rig.advance(60)
    rig.read("shop-1", "1")
    assert rig.account("shop-1").charged_total == 3000


def test_register_at_bound_accepted(rig: Rig) -> None:
    rig.read("shop-1", "1" + "0" * 15)  # 10^15 kWh = core.MAX_REGISTER_MILLI: the baseline
    assert "register_unreadable" not in rig.kinds("shop-1")


def test_charge_above_maximum_fails_without_aborting(rig: Rig) -> None:
    rig.read("shop-1", "0")
    rig.advance(60)
    rig.read("shop-1", "1" + "0" * 14)  # 10^14 kWh at 0.30: far above MAX_AMOUNT
    assert "prepay_charge_failed" in rig.kinds("shop-1")
    assert rig.account("shop-1").charged_total == 0
