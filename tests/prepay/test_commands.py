"""Prepay command handlers: refusals with reasons, tariff.set persistence, settings schema."""

from __future__ import annotations

from typing import Any

import pytest

from prepay.errors import CommandRefusedError, PrepayError
from prepay.settings import settings_from_config
from tests.prepay.rig import Rig, site_config


@pytest.mark.parametrize(
    ("op", "args", "reason"),
    [
        ("credit.topup", {"meter": "nope", "amount": "1", "txid": "a"}, "unknown_meter"),
        ("credit.topup", {"meter": "shop-1", "amount": "1.00001", "txid": "a"}, "bad_amount"),
        ("credit.topup", {"meter": "shop-1", "amount": -1, "txid": "a"}, "bad_amount"),
        ("credit.topup", {"meter": "shop-1", "amount": "1", "txid": ""}, "bad_txid"),
        ("credit.topup", {"meter": "shop-1", "amount": "1", "txid": "a", "currency": "USD"},
         "wrong_currency"),
        ("relay.set", {"meter": "shop-1", "state": "half"}, "bad_state"),
        ("prepay.mode", {"meter": "shop-1", "mode": "free"}, "bad_mode"),
        ("prepay.limit", {"meter": "shop-1", "warn_limit": "x"}, "bad_warn_limit"),
        ("tariff.set", {"tariff": "t", "definition": {"currency": "EUR"}}, "bad_tariff"),
        ("tariff.set", {"tariff": "t", "definition": "x"}, "bad_tariff"),
        ("emergency.activate", {"meter": 5}, "unknown_meter"),
    ],
)
async def test_refusals_name_a_reason(rig: Rig, op: str, args: dict[str, Any],
                                      reason: str) -> None:
    with pytest.raises(CommandRefusedError) as err:
        await rig.commands.handlers()[op](args, None)
    assert err.value.reason == reason
    assert rig.account("shop-1").balance == 0


async def test_tariff_set_persists_and_applies_after_restart(rig: Rig) -> None:
    definition = {"currency": "EUR", "versions": [
        {"effective_from": "2026-01-01", "price": "1.00"}]}
    result = await rig.commands.tariff_set(
        {"tariff": "dear", "definition": definition, "meters": ["shop-1"]}, None)
    assert result == {"tariff": "dear", "versions": 1, "meters": ["shop-1"]}
    rig.reopen()
    await rig.topup("shop-1", "10.00", "t1")
    rig.read("shop-1", "0")
    rig.advance(60)
    rig.read("shop-1", "2")
    assert rig.account("shop-1").charged_total == 20000


async def test_limit_and_mode_persist(rig: Rig) -> None:
    await rig.commands.prepay_limit({"meter": "shop-1", "warn_limit": "7.50"}, None)
    await rig.commands.prepay_mode({"meter": "shop-1", "mode": "manual"}, None)
    rig.reopen()
    with rig.store.transaction() as tx:
        machine = rig.engine.machine(tx, rig.settings.meters["shop-1"])
    assert (machine.config["mode"], machine.config["warn_limit"]) == ("manual", 75000)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"colour": 1}, "colour"),
        ({"timezone": "Nowhere/Land"}, "Nowhere/Land"),
        ({"debt_share_percent": 101}, "debt_share_percent"),
        ({"reconnect": "button"}, "button_input"),
        ({"holidays": ["25.12."]}, "holidays[0]"),
        ({"friendly_hours": [{"start": "25:00", "end": "06:00"}]}, "friendly_hours[0].start"),
        ({"emergency_credit": "abc"}, "emergency_credit"),
        ({"meters": {"m": {"tariff": "flat"}}}, "prepay.meters.m.relay"),
        ({"meters": {"m": {"tariff": "gone", "relay": "r"}}}, "prepay.meters.m.tariff"),
        ({"meters": {"m": {"tariff": "flat", "relay": "r", "mode": "x"}}}, "meters.m.mode"),
        ({"meters": {"m": {"tariff": "flat", "relay": "r", "generator": "input"}}},
         "generator_input"),
        ({"meters": {"m": {"tariff": "flat", "relay": "r", "max_trips": 0}}}, "max_trips"),
        ({"meters": {"m": {"tariff": "flat", "relay": "r", "volts": 0}}}, "volts"),
        ({"voucher_keys": {"utility-1": 5}}, "voucher_keys.utility-1"),
    ],
)
def test_settings_errors_name_the_key(change: dict[str, Any], fragment: str) -> None:
    with pytest.raises(PrepayError) as err:
        settings_from_config(site_config(**change))
    assert fragment in str(err.value)


def test_voucher_keys_kept() -> None:
    cfg = settings_from_config(site_config(voucher_keys={"utility-1": "/etc/gw/utility-1.pem"}))
    assert cfg.voucher_keys == {"utility-1": "/etc/gw/utility-1.pem"}
