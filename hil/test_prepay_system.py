"""Whole system: a simulated meter consumes, credit runs down, the warning fires, the relay
opens at zero, and a USB-stick voucher restores supply; all through the real `gateway run`."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drivers.modbus.site import RunningSim, SimBus, SimMeter, site_config, start_simulators
from prepay.vouchers import build_voucher_payload
from storage import ledger
from storage.store import Store
from tests.harness.eventually import eventually
from tests.harness.gateway_process import GatewayProcess
from uplink.cose import sign1
from uplink.keys import create_private_key, public_pem

GW = "gw-prepay"
# Each step waits for a state, not for a time. The simulated load swings tenfold over its hour:
# at its trough the 30 EUR between the warning and zero take about 80 s.
STEP_DEADLINE_S = 180
SITE = (SimBus("rs485-1", "rtu", (SimMeter("shop-01", 1, "eastron_sdm630", 5),)),)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RunningSim]:
    running = start_simulators(SITE, tmp_path / "sim")
    yield running
    running.stop()


def prepay_section(utility_pub: Path) -> str:
    # Up to ~27 kW at 500 EUR/kWh: up to 3.75 EUR a second. The warning needs one charge that
    # leaves the credit below warn_limit but above zero, so a charge must stay below warn_limit:
    # 30 EUR allows polls up to 8 s apart at the peak (a loaded machine delays polls; a 5 EUR
    # voucher with a 3 EUR warning jumped straight to zero when two polls were 1.5 s apart).
    return f"""
[prepay]
timezone = "UTC"
currency = "EUR"
reconnect = "automatic"
reconnect_threshold = "0.50"
voucher_keys = {{ "utility-1" = "{utility_pub}" }}

[prepay.tariffs.flat]
currency = "EUR"
versions = [ {{ effective_from = "2020-01-01", price = "500.00" }} ]

[prepay.meters.shop-01]
tariff = "flat"
mode = "automatic"
warn_limit = "30.00"
relay = "relay-shop-01"
"""


def put_voucher(board_dir: Path, stick: str, utility: Ed25519PrivateKey, amount: str) -> None:
    vouchers = board_dir / "media" / stick / "vouchers"
    vouchers.mkdir(parents=True)
    payload = build_voucher_payload(GW, "shop-01", amount, "EUR", int(time.time()) + 3600)
    (vouchers / "v.cose").write_bytes(sign1(payload, utility, b"utility-1"))


def relay(board_dir: Path) -> bool | None:
    try:
        state: dict[str, bool] = json.loads((board_dir / "outputs.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return state.get("relay-shop-01")


def events(db: Path) -> list[str]:
    """Event kinds in order; a refused voucher shows as `voucher_refused`."""
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        return [k for (k,) in conn.execute("SELECT kind FROM events ORDER BY id")]


def wait_until(check: Callable[[], object], what: str) -> None:
    eventually(check, STEP_DEADLINE_S, what)


def test_credit_runs_down_relay_opens_and_a_voucher_restores_supply(
        sim: RunningSim, tmp_path: Path) -> None:
    utility = Ed25519PrivateKey.generate()
    (tmp_path / "utility.pub.pem").write_text(public_pem(utility))
    create_private_key(tmp_path / "gateway_ed25519.pem")
    board = tmp_path / "board"
    db = tmp_path / "gateway.db"
    config = tmp_path / "site.toml"
    config.write_text(site_config(sim, tmp_path, gateway_id=GW, poll_interval_s=1,
                                  commit_interval_ms=200,
                                  extra=prepay_section(tmp_path / "utility.pub.pem")))
    put_voucher(board, "stick-1", utility, "40.00")
    log = tmp_path / "gateway.log"
    with GatewayProcess(config, log) as first:
        wait_until(lambda: relay(board) is True, "the voucher closes the relay")
        assert (board / "media/stick-1/receipts").is_dir()  # a signed receipt went back
        wait_until(lambda: "low_credit" in events(db), "the low-credit warning")
        wait_until(lambda: relay(board) is False, "the relay opens at zero credit")
        assert "credit_exhausted" in events(db) and "relay_opened" in events(db)
        first.kill()  # a power cut; stick-1 stays in the port
    assert relay(board) is False  # the relay keeps its state through the crash
    with GatewayProcess(config, log) as second:
        # stick-1 is seen again after the restart: refused, not credited twice
        wait_until(lambda: "voucher_refused" in events(db), "stick-1 refused as redeemed")
        assert relay(board) is False
        put_voucher(board, "stick-2", utility, "50.00")
        wait_until(lambda: relay(board) is True, "the second voucher restores supply")
        assert second.stop() == 0, second.log_tail()
    store = Store.open(db, create=False)
    try:
        with store.transaction() as tx:
            account = ledger.verify_account(tx.conn, "shop-01")  # totals re-derived from entries
        assert account.loaded_total == 90 * 10_000
        assert account.balance == account.loaded_total - account.charged_total
        assert account.charged_total >= 40 * 10_000  # the first voucher was used up
    finally:
        store.close()
