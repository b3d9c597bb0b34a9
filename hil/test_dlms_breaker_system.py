"""Whole system: prepay drives a DLMS meter's own breaker in the real `gateway run`
(`[prepay.meters.ID] breaker = "meter"`): the simulated meter (HDLC on a pty, HLS-GMAC,
suite 0) is disconnected when the credit runs out and reconnected by a top-up (a USB-stick
voucher), and the contactor-feedback check compares what prepay commanded with the state the
meter reports (a breaker opened at the meter is `tamper_contactor_mismatch`, closed again
`..._cleared`). No board output is used for it.

The simulated meter adds 250 Wh every `PERIOD_S` (2 s) at 10 EUR/kWh: 2.50 EUR every 2 s, so a
10 EUR voucher lasts some 8 s."""

from __future__ import annotations

import json
import sqlite3
import textwrap
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drivers.dlms.keys import DlmsKeyFile
from drivers.dlms.security import Keys
from drivers.dlms.server import ServerSettings
from drivers.dlms.simhost import SimHost
from prepay.vouchers import build_voucher_payload
from tests.harness.eventually import eventually
from tests.harness.gateway_process import GatewayProcess
from uplink.cose import sign1
from uplink.keys import create_private_key, public_pem

GW = "gw-hil-dlms-prepay"
KEYS = Keys(bytes.fromhex("000102030405060708090A0B0C0D0E0F"),
            bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"))
PERIOD_S = 2
STEP_DEADLINE_S = 120.0  # waits for states (the prepay tick is 10 s), never asserts on speed


def _config(tmp_path: Path, port: str) -> Path:
    (tmp_path / "utility.pub.pem").write_text(public_pem(UTILITY))
    config = tmp_path / "site.toml"
    config.write_text(textwrap.dedent(f"""
        gateway_id = "{GW}"
        timezone = "UTC"

        [storage]
        path = "{tmp_path / 'gw.db'}"
        commit_interval_ms = 200

        [board]
        state_dir = "{tmp_path / 'board'}"

        [[bus]]
        id = "line"
        port = "{port}"
        baudrate = 9600

        [[meter]]
        id = "flat-7"
        bus = "line"
        protocol = "dlms"
        address = 17
        poll_interval_s = 1
        timeout_ms = 1000
        client = 1
        authentication = "hls_gmac"
        load_profile_every = 0
        billing_every = 0

        [prepay]
        timezone = "UTC"
        currency = "EUR"
        reconnect = "automatic"
        reconnect_threshold = "0.50"
        voucher_keys = {{ "utility-1" = "{tmp_path / 'utility.pub.pem'}" }}

        [prepay.tariffs.flat]
        currency = "EUR"
        versions = [ {{ effective_from = "2020-01-01", price = "10.00" }} ]

        [prepay.meters.flat-7]
        tariff = "flat"
        mode = "automatic"
        breaker = "meter"
    """))
    return config


UTILITY = Ed25519PrivateKey.generate()


def _voucher(board: Path, stick: str, amount: str) -> None:
    vouchers = board / "media" / stick / "vouchers"
    vouchers.mkdir(parents=True)
    payload = build_voucher_payload(GW, "flat-7", amount, "EUR", int(time.time()) + 3600)
    (vouchers / "v.cose").write_bytes(sign1(payload, UTILITY, b"utility-1"))


def _events(db: Path) -> list[str]:
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            return [k for (k,) in conn.execute("SELECT kind FROM events ORDER BY id")]
        except sqlite3.OperationalError:  # created, not migrated yet
            return []


def test_prepay_opens_and_closes_the_meters_own_breaker(tmp_path: Path) -> None:
    keys = DlmsKeyFile(tmp_path / "dlms-keys")
    keys.add("flat-7", "encryption", KEYS.encryption.hex())
    keys.add("flat-7", "authentication", KEYS.authentication.hex())
    create_private_key(tmp_path / "gateway_ed25519.pem")
    board, db = tmp_path / "board", tmp_path / "gw.db"
    with SimHost("hdlc", ServerSettings(keys=KEYS), capture_period_s=PERIOD_S) as host:
        meter = host.objects

        def breaker(closed: bool, action: str) -> bool:
            return host.call(lambda: meter.output_state is closed and bool(meter.actions)
                             and meter.actions[-1] == action)

        with GatewayProcess(_config(tmp_path, host.port_path), tmp_path / "gateway.log") as gw:
            # no credit at start: prepay opens the meter's breaker
            def opened_without_credit() -> bool:
                gw.assert_running()
                return breaker(False, "disconnect")
            eventually(opened_without_credit, STEP_DEADLINE_S, "the breaker opened without credit")
            _voucher(board, "stick-1", "10.00")
            eventually(lambda: breaker(True, "reconnect"), STEP_DEADLINE_S,
                       "a top-up reconnects the meter")
            eventually(lambda: "credit_exhausted" in _events(db) and breaker(False, "disconnect"),
                       STEP_DEADLINE_S, "the credit runs out: the meter's breaker opens")
            _voucher(board, "stick-2", "50.00")
            eventually(lambda: breaker(True, "reconnect"), STEP_DEADLINE_S,
                       "the second top-up reconnects")
            assert "tamper_contactor_mismatch" not in _events(db)
            host.call(setattr, meter, "output_state", False)  # opened at the meter itself
            eventually(lambda: "tamper_contactor_mismatch" in _events(db), STEP_DEADLINE_S,
                       "the meter's reported state differs from the command")
            host.call(setattr, meter, "output_state", True)
            eventually(lambda: "tamper_contactor_mismatch_cleared" in _events(db),
                       STEP_DEADLINE_S, "the reported state agrees again")
            assert gw.stop() == 0, gw.log_tail()
        actions = host.call(lambda: list(meter.actions))
    assert actions[:4] == ["disconnect", "reconnect", "disconnect", "reconnect"]
    outputs = board / "outputs.json"
    driven = json.loads(outputs.read_text()) if outputs.exists() else {}
    assert not any("flat-7" in name for name in driven)  # no board output stood in for it
