"""PrepayEngine over a real store and the simulated board: charging, relays, tamper, restore."""

from __future__ import annotations

import pytest

from board.interface import InputChange
from prepay.errors import CommandRefusedError
from storage import ledger
from tests.prepay.rig import Rig, local_ms


async def test_charges_register_delta_exactly(rig: Rig) -> None:
    await rig.topup("shop-1", "100.00", "t1")
    rig.read("shop-1", "1000.000")
    assert rig.account("shop-1").balance == 1_000_000  # first reading: baseline only
    rig.advance(60)
    rig.read("shop-1", "1001.234")  # 1.234 kWh at 0.30 = 0.3702
    acc = rig.account("shop-1")
    assert acc.balance == 1_000_000 - 3702 and acc.carry == 0
    body = [r.body for r in rig.store.pending_outbox(100) if r.kind == "ledger"][-1]
    assert body["kind"] == "charge" and body["amount"] == -3702


async def test_sub_unit_remainders_carry_forward(rig: Rig) -> None:
    await rig.topup("shop-1", "100.00", "t1")
    for i in range(101):  # 100 steps of 1 Wh at 0.30/kWh: 0.3 money units each
        rig.read("shop-1", f"1000.{i:03d}")
        rig.advance(1)
    acc = rig.account("shop-1")
    assert acc.charged_total * 1000 + acc.carry == 100 * 3000
    assert acc.charged_total == 300


async def test_replayed_reading_charges_once(rig: Rig) -> None:
    await rig.topup("shop-1", "100.00", "t1")
    rig.read("shop-1", "10", rid=1)
    rig.advance(60)
    rig.read("shop-1", "12", rid=2)
    rig.read("shop-1", "12", rid=2)
    assert rig.account("shop-1").charged_total == 6000


async def test_register_going_back_charges_nothing(rig: Rig) -> None:
    await rig.topup("shop-1", "100.00", "t1")
    rig.read("shop-1", "500")
    rig.advance(60)
    rig.read("shop-1", "3")  # meter replaced
    rig.advance(60)
    rig.read("shop-1", "4")
    assert rig.account("shop-1").charged_total == 3000
    assert "register_went_back" in rig.kinds("shop-1")


async def test_time_of_use_interval_apportioned(rig: Rig) -> None:
    await rig.topup("shop-2", "100.00", "t1")
    rig.now = local_ms(2026, 3, 4, 11, 30)
    rig.read("shop-2", "0")
    rig.now = local_ms(2026, 3, 4, 12, 30)
    rig.read("shop-2", "2")  # 1 kWh at 0.30 + 1 kWh at 0.10
    assert rig.account("shop-2").charged_total == 4000


async def test_generator_input_prices_at_generator_price(rig: Rig) -> None:
    await rig.topup("shop-2", "100.00", "t1")
    rig.read("shop-2", "0")
    rig.board.set_input("gen", True)
    rig.advance(60)
    rig.read("shop-2", "1")
    assert rig.account("shop-2").charged_total == 8000


async def test_generator_register_priced_apart(rig: Rig) -> None:
    await rig.topup("flat-3", "100.00", "t1")
    rig.read("flat-3", import_active_energy_t1="1", import_active_energy_t2="1")
    rig.advance(60)
    rig.read("flat-3", import_active_energy_t1="2", import_active_energy_t2="3")
    assert rig.account("flat-3").charged_total == 9000


async def test_automatic_opens_at_zero_outside_friendly_hours_only(rig: Rig) -> None:
    await rig.topup("shop-1", "6.00", "t1")
    rig.read("shop-1", "0")
    rig.now = local_ms(2026, 3, 4, 19, 50)
    rig.read("shop-1", "4")  # 1.20 spent, 4.80 < 5.00 warning limit
    assert "low_credit" in rig.kinds("shop-1")
    assert rig.board.output_state("alarm-1") is True
    rig.now = local_ms(2026, 3, 4, 21, 0)  # friendly hours: no disconnection
    rig.read("shop-1", "30")
    assert rig.account("shop-1").credit == 0 and rig.account("shop-1").debt > 0
    assert rig.board.output_state("relay-1") is True
    rig.now = local_ms(2026, 3, 5, 8, 1)
    rig.engine.tick()
    assert rig.board.output_state("relay-1") is False
    assert ("relay_opened", "credit_exhausted") in [
        (k, d.get("reason")) for k, d in rig.events("shop-1")]


async def test_topup_above_threshold_reconnects_and_recovers_debt(rig: Rig) -> None:
    await rig.topup("shop-1", "1.00", "t1")
    rig.read("shop-1", "0")
    rig.advance(60)
    rig.read("shop-1", "10")  # 3.00 charged: 2.00 debt
    assert rig.board.output_state("relay-1") is False
    result = await rig.topup("shop-1", "20.00", "t2")
    assert result["credited"] and result["debt"] == "0.0000" and result["balance"] == "18.0000"
    assert rig.board.output_state("relay-1") is True
    again = await rig.topup("shop-1", "20.00", "t2")
    assert not again["credited"] and again["balance"] == "18.0000"


async def test_button_reconnect(button_rig: Rig) -> None:
    rig = button_rig
    rig.read("shop-1", "0")
    rig.engine.tick()
    assert rig.board.output_state("relay-1") is False
    await rig.topup("shop-1", "20.00", "t1")
    assert rig.board.output_state("relay-1") is False
    assert "reconnect_armed" in rig.kinds("shop-1")
    rig.engine.on_input_change(InputChange("button", True, rig.now))
    assert rig.board.output_state("relay-1") is True


async def test_operator_and_manual_modes(rig: Rig) -> None:
    await rig.commands.prepay_mode({"meter": "shop-1", "mode": "operator"}, None)
    rig.read("shop-1", "0")
    rig.engine.tick()
    assert rig.board.output_state("relay-1") is True
    assert "credit_exhausted" in rig.kinds("shop-1")
    await rig.commands.relay_set({"meter": "shop-1", "state": "open"}, None)
    assert rig.board.output_state("relay-1") is False
    await rig.commands.prepay_mode({"meter": "shop-1", "mode": "manual"}, None)
    await rig.commands.relay_set({"meter": "shop-1", "state": "closed"}, None)
    rig.engine.tick()
    assert rig.board.output_state("relay-1") is True


async def test_max_power_trips_retries_then_locks_out(rig: Rig) -> None:
    await rig.topup("shop-2", "100.00", "t1")
    rig.read("shop-2", "0", power=5000)
    rig.advance(61)
    rig.read("shop-2", "0.1", power=5000)
    assert rig.board.output_state("relay-2") is False
    rig.advance(301)
    rig.engine.tick()
    assert rig.board.output_state("relay-2") is True
    rig.read("shop-2", "0.2", power=5000)
    rig.advance(61)
    rig.read("shop-2", "0.3", power=5000)
    assert rig.board.output_state("relay-2") is False
    rig.advance(10_000)
    rig.engine.tick()
    assert rig.board.output_state("relay-2") is False
    assert "max_power_lockout" in rig.kinds("shop-2")
    await rig.commands.relay_set({"meter": "shop-2", "state": "closed"}, None)
    assert rig.board.output_state("relay-2") is True


async def test_standing_charge_per_day(rig: Rig) -> None:
    await rig.topup("shop-1", "100.00", "t1")
    rig.engine.tick()
    assert rig.account("shop-1").charged_total == 0
    rig.now = local_ms(2026, 3, 7, 9)
    rig.engine.tick()
    rig.engine.tick()
    assert rig.account("shop-1").charged_total == 3 * 5000  # 4th, 5th, 6th March


async def test_restore_after_reboot_follows_state_not_default(rig: Rig) -> None:
    await rig.topup("shop-2", "50.00", "t1")
    rig.read("shop-1", "0")
    rig.engine.tick()
    assert rig.board.output_state("relay-1") is False
    assert rig.board.output_state("relay-2") is True
    rig.reopen()
    rig.board.set_output("relay-1", True)  # relays changed while the gateway was down
    rig.board.set_output("relay-2", False)
    rig.engine.restore_relays()
    assert rig.board.output_state("relay-1") is False
    assert rig.board.output_state("relay-2") is True
    assert "relay_restored" in rig.kinds("shop-1")


async def test_tamper_feedback_and_consumption_while_open(rig: Rig) -> None:
    rig.read("shop-1", "0")
    rig.engine.tick()
    assert rig.board.output_state("relay-1") is False
    rig.board.set_input("aux-1", True)  # contactor reports closed while commanded open
    rig.engine.tick()
    rig.advance(60)
    rig.read("shop-1", "1")
    kinds = rig.kinds("shop-1")
    assert "tamper_contactor_mismatch" in kinds
    assert "tamper_consumption_while_open" in kinds


async def test_emergency_credit_once_and_repaid_first(rig: Rig) -> None:
    rig.read("shop-1", "0")
    rig.engine.tick()
    result = await rig.commands.emergency_activate({"meter": "shop-1"}, None)
    assert result["emergency"] == "10.0000"
    assert rig.board.output_state("relay-1") is True
    with pytest.raises(CommandRefusedError, match="emergency_already_used"):
        await rig.commands.emergency_activate({"meter": "shop-1"}, None)
    result = await rig.topup("shop-1", "15.00", "t1")
    assert (result["emergency"], result["credit"], result["balance"]) == (
        "0.0000", "15.0000", "15.0000")
    assert ledger.account(rig.store.db.conn, "shop-1").emergency_used


async def test_stale_reading_ignored_and_charged_later(rig: Rig) -> None:
    await rig.topup("shop-1", "100.00", "t1")
    rig.read("shop-1", "10")
    rig.advance(600)
    rig.read("shop-1", "12")
    rig.advance(-300)  # clock set back: an older timestamp
    rig.read("shop-1", "13")
    assert rig.account("shop-1").charged_total == 6000
    assert "register_went_back" not in rig.kinds("shop-1")
    rig.advance(600)
    rig.read("shop-1", "14")
    assert rig.account("shop-1").charged_total == 12000


async def test_pricing_failure_keeps_delta_for_later(rig: Rig) -> None:
    await rig.topup("shop-1", "100.00", "t1")
    rig.now = local_ms(2025, 12, 31, 23, 0)  # before the tariff's effective date
    rig.read("shop-1", "1")
    rig.advance(1800)
    rig.read("shop-1", "2")
    assert "prepay_charge_failed" in rig.kinds("shop-1")
    rig.now = local_ms(2026, 1, 1, 1, 0)
    rig.read("shop-1", "3")  # 2 kWh; the hour before the tariff existed at the end's price
    assert rig.account("shop-1").charged_total == 6000
