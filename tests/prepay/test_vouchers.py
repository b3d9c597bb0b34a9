"""USB-stick vouchers: real Ed25519 COSE_Sign1 files in a temp "stick"; every refusal reason."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.wiring.prepay import voucher_key_verifier
from prepay.errors import VoucherRefused
from prepay.vouchers import (
    MAX_VOUCHER_BYTES,
    VoucherReader,
    build_voucher_payload,
    parse_payload,
)
from tests.prepay.rig import Rig, working_hours_now
from uplink.cose import parse_sign1, sign1, verify_sign1

UTILITY = Ed25519PrivateKey.generate()
GATEWAY = Ed25519PrivateKey.generate()
KEYS = {"utility-2026": UTILITY.public_key()}
GW = "gw-test"


# What gateway/ wires in (production code, not a copy): parse, look the kid up, verify.
cose_verify = voucher_key_verifier(KEYS)


def gw_sign(payload: bytes) -> bytes:
    return sign1(payload, GATEWAY, b"gw-test")


def voucher(meter: str = "shop-1", amount: str = "20.00", *, gw: str = GW,
            exp: int | None = None, key: Ed25519PrivateKey = UTILITY, kid: bytes = b"utility-2026",
            vid: bytes | None = None) -> bytes:
    exp = int(time.time()) + 86400 if exp is None else exp
    return sign1(build_voucher_payload(gw, meter, amount, "EUR", exp, vid), key, kid)


def stick(tmp: Path, files: dict[str, bytes]) -> Path:
    mount = tmp / "stick"
    (mount / "vouchers").mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (mount / "vouchers" / name).write_bytes(data)
    return mount


@pytest.fixture
def reader(rig: Rig) -> VoucherReader:
    rig.now = working_hours_now()
    return VoucherReader(rig.engine, GW, cose_verify, gw_sign)


def test_valid_voucher_credits_once_with_signed_receipt(rig: Rig, reader: VoucherReader,
                                                        tmp_path: Path) -> None:
    rig.read("shop-1", "0")
    rig.engine.tick()
    assert rig.board.output_state("relay-1") is False
    mount = stick(tmp_path, {"a.cose": voucher(vid=b"\x01" * 16)})
    [outcome] = reader.on_mounts([str(mount)])
    assert (outcome.status, outcome.meter) == ("redeemed", "shop-1")
    assert rig.account("shop-1").balance == 200_000
    assert rig.board.output_state("relay-1") is True
    receipt = (mount / "receipts" / ("01" * 16 + ".cose")).read_bytes()
    body = cbor2.loads(verify_sign1(parse_sign1(receipt, max_bytes=4096), GATEWAY.public_key()))
    assert body["amount"] == "20.0000" and body["meter"] == "shop-1"
    assert reader.on_mounts([str(mount)]) == []  # still inserted: not read again
    reader.on_mounts([])
    [again] = reader.on_mounts([str(mount)])  # re-inserted
    assert (again.status, again.reason) == ("refused", "already_redeemed")
    assert rig.account("shop-1").balance == 200_000
    assert "voucher_refused" in rig.kinds("shop-1")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: voucher(exp=1000), "expired"),
        (lambda: voucher(key=Ed25519PrivateKey.generate()), "forged"),
        (lambda: voucher(kid=b"stolen-key"), "forged"),
        (lambda: voucher(meter="elsewhere-9"), "foreign_meter"),
        (lambda: voucher(gw="other-gw"), "foreign_gateway"),
        (lambda: b"\x00" * (MAX_VOUCHER_BYTES + 1), "oversized"),
        (lambda: b"hello, not a voucher", "garbage"),
        (lambda: sign1(cbor2.dumps({"id": 1}), UTILITY, b"utility-2026"), "garbage"),
        (lambda: sign1(b"\xff\xff", UTILITY, b"utility-2026"), "garbage"),
    ],
)
def test_refusals_credit_nothing(rig: Rig, reader: VoucherReader, tmp_path: Path,
                                 make: object, reason: str) -> None:
    mount = stick(tmp_path, {"v.cose": make()})  # type: ignore[operator]
    [outcome] = reader.redeem_stick(mount)
    assert (outcome.status, outcome.reason) == ("refused", reason)
    assert rig.account("shop-1").balance == 0
    assert not (mount / "receipts").exists() or not any((mount / "receipts").iterdir())


def test_symlink_refused(rig: Rig, reader: VoucherReader, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.cose"
    target.write_bytes(voucher())
    mount = stick(tmp_path, {})
    os.symlink(target, mount / "vouchers" / "link.cose")
    [outcome] = reader.redeem_stick(mount)
    assert outcome.reason == "symlink"
    assert rig.account("shop-1").balance == 0


def test_read_only_stick_refused(rig: Rig, reader: VoucherReader, tmp_path: Path) -> None:
    mount = stick(tmp_path, {"v.cose": voucher()})
    (mount / "receipts").write_bytes(b"")  # receipts cannot be created: a file blocks it
    [outcome] = reader.redeem_stick(mount)
    assert outcome.reason == "read_only_stick"
    assert rig.account("shop-1").balance == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_refused(rig: Rig, reader: VoucherReader, tmp_path: Path) -> None:
    mount = stick(tmp_path, {"v.cose": voucher()})
    mount.chmod(0o555)
    try:
        [outcome] = reader.redeem_stick(mount)
    finally:
        mount.chmod(0o755)
    assert outcome.reason == "read_only_stick"


def test_same_voucher_twice_on_one_stick(rig: Rig, reader: VoucherReader, tmp_path: Path) -> None:
    data = voucher(vid=b"\x02" * 16)
    mount = stick(tmp_path, {"a.cose": data, "b.cose": data})
    outcomes = reader.redeem_stick(mount)
    assert [o.status for o in outcomes] == ["redeemed", "refused"]
    assert rig.account("shop-1").balance == 200_000


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_parse_payload_fuzz(data: bytes) -> None:
    try:
        parse_payload(data, "k")
    except VoucherRefused as refused:
        assert refused.reason == "garbage"


def test_payload_round_trip() -> None:
    payload = build_voucher_payload("gw", "m", "1.5", "EUR", 99, b"\x07" * 16)
    v = parse_payload(payload, "k")
    assert (v.id, v.gw, v.meter, v.amount, v.currency, v.exp) == (
        "07" * 16, "gw", "m", 15000, "EUR", 99)
