"""Vouchers that are validly signed but hold out-of-range or unexpected content.

Before the bounds, a signed `amount = "1E+999999"` raised decimal.Overflow (and `"1e30"` an
SQLite OverflowError) out of the reader: the voucher task died and every file sorted after it
was never read again, also after a restart. Now each such file is refused with its reason
(persisted as a `voucher_refused` event) and the reader goes on with the next file.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from prepay import core, vouchers
from prepay.errors import VoucherRefused
from prepay.vouchers import MAX_EXP_S, VoucherReader
from tests.prepay.rig import Rig, working_hours_now
from tests.prepay.test_vouchers import GW, UTILITY, cose_verify, gw_sign, stick, voucher
from uplink.cose import sign1


def raw_voucher(amount: Any = "20.00", *, exp: Any = None, vid: bytes = b"\x05" * 16,
                meter: str = "shop-1") -> bytes:
    """A signed voucher built without build_voucher_payload (which refuses bad amounts)."""
    payload = {"id": vid, "gw": GW, "meter": meter, "amount": amount, "currency": "EUR",
               "exp": int(time.time()) + 86400 if exp is None else exp}
    return sign1(cbor2.dumps(payload), UTILITY, b"utility-2026")


@pytest.fixture
def reader(rig: Rig) -> VoucherReader:
    rig.now = working_hours_now()
    return VoucherReader(rig.engine, GW, cose_verify, gw_sign)


def refusals(rig: Rig) -> list[str]:
    return [data["reason"] for kind, data in rig.events() if kind == "voucher_refused"]


@pytest.mark.parametrize("amount", ["1E+999999", "1e30", "1000000000.0001", "12.5e0",
                                    10**30, -5, "0"])
def test_out_of_range_amount_refused_and_next_file_read(rig: Rig, reader: VoucherReader,
                                                        tmp_path: Path, amount: Any) -> None:
    mount = stick(tmp_path, {"a-bad.cose": raw_voucher(amount),
                             "b-good.cose": voucher(vid=b"\x06" * 16)})
    outcomes = reader.on_mounts([str(mount)])
    assert [(o.file, o.status, o.reason) for o in outcomes] == [
        ("a-bad.cose", "refused", "bad_amount"), ("b-good.cose", "redeemed", None)]
    assert rig.account("shop-1").balance == 200_000
    assert refusals(rig) == ["bad_amount"]


def test_amount_at_the_maximum_redeemed(rig: Rig, reader: VoucherReader, tmp_path: Path) -> None:
    mount = stick(tmp_path, {"max.cose": raw_voucher("1000000000")})
    [outcome] = reader.redeem_stick(mount)
    assert outcome.status == "redeemed"
    assert rig.account("shop-1").balance == 10**13


def test_bad_voucher_does_not_block_after_a_restart(rig: Rig, tmp_path: Path) -> None:
    rig.now = working_hours_now()
    mount = stick(tmp_path, {"a.cose": raw_voucher("1E+999999"),
                             "b.cose": voucher(vid=b"\x07" * 16)})
    VoucherReader(rig.engine, GW, cose_verify, gw_sign).on_mounts([str(mount)])
    rig.reopen()
    again = VoucherReader(rig.engine, GW, cose_verify, gw_sign).on_mounts([str(mount)])
    assert [o.reason for o in again] == ["bad_amount", "already_redeemed"]
    assert rig.account("shop-1").balance == 200_000


@pytest.mark.parametrize(("exp", "status"), [(MAX_EXP_S, "redeemed"), (MAX_EXP_S + 1, "garbage"),
                                             (2**64, "garbage"), (-1, "garbage")])
def test_exp_bound_both_sides(rig: Rig, reader: VoucherReader, tmp_path: Path, exp: int,
                              status: str) -> None:
    [outcome] = reader.redeem_stick(stick(tmp_path, {"v.cose": raw_voucher(exp=exp)}))
    assert (outcome.reason or outcome.status) == status


def test_unexpected_error_refuses_only_that_file(rig: Rig, tmp_path: Path) -> None:
    def verify(data: bytes) -> tuple[str, bytes]:
        if data == b"boom":
            raise RuntimeError("a defect this content reveals")
        return cose_verify(data)

    rig.now = working_hours_now()
    mount = stick(tmp_path, {"a.cose": b"boom", "b.cose": voucher(vid=b"\x08" * 16)})
    outcomes = VoucherReader(rig.engine, GW, verify, gw_sign).on_mounts([str(mount)])
    assert [(o.status, o.reason) for o in outcomes] == [("refused", "unprocessable"),
                                                        ("redeemed", None)]
    assert refusals(rig) == ["unprocessable"]


def test_failing_report_does_not_stop_the_reader(rig: Rig, reader: VoucherReader,
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    real = rig.engine.event
    calls: list[str] = []

    def flaky(tx: Any, kind: str, *args: Any) -> None:
        calls.append(kind)
        if len(calls) == 1:
            raise OSError(errno.EIO, "event store failed once")
        real(tx, kind, *args)

    monkeypatch.setattr(rig.engine, "event", flaky)
    mount = stick(tmp_path, {"a.cose": b"junk", "b.cose": voucher(vid=b"\x09" * 16)})
    outcomes = reader.on_mounts([str(mount)])
    assert [o.reason for o in outcomes] == ["garbage", None]
    assert rig.account("shop-1").balance == 200_000


def test_read_error_refuses_that_file_as_unreadable(rig: Rig, reader: VoucherReader,
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    real_read = os.read
    failed: list[int] = []

    def eio_once(fd: int, size: int) -> bytes:
        if not failed:
            failed.append(fd)
            raise OSError(errno.EIO, "Input/output error")
        return real_read(fd, size)

    monkeypatch.setattr(vouchers.os, "read", eio_once)
    mount = stick(tmp_path, {"a.cose": voucher(vid=b"\x0a" * 16),
                             "b.cose": voucher(vid=b"\x0b" * 16)})
    outcomes = reader.redeem_stick(mount)
    assert [(o.status, o.reason) for o in outcomes] == [("refused", "unreadable"),
                                                        ("redeemed", None)]


def test_undecodable_file_name_is_reported(rig: Rig, reader: VoucherReader,
                                           tmp_path: Path) -> None:
    mount = stick(tmp_path, {"z.cose": voucher(vid=b"\x0c" * 16)})
    try:
        with open(os.path.join(os.fsencode(mount / "vouchers"), b"\xff.cose"), "wb") as handle:
            handle.write(b"junk")
    except OSError:
        pytest.skip("the file system refuses non-UTF-8 names")
    outcomes = reader.on_mounts([str(mount)])
    assert [(o.file, o.reason) for o in outcomes] == [("z.cose", None),
                                                      ("\\udcff.cose", "garbage")]
    assert refusals(rig) == ["garbage"]
    for _, data in rig.events():
        cbor2.dumps(data)  # what goes upstream: a lone surrogate would not encode
    assert rig.account("shop-1").balance == 200_000


def test_parse_payload_bad_amount_reason() -> None:
    payload = cbor2.dumps({"id": b"\x01" * 16, "gw": GW, "meter": "m", "amount": "1e30",
                           "currency": "EUR", "exp": 1})
    with pytest.raises(VoucherRefused) as err:
        vouchers.parse_payload(payload, "k")
    assert err.value.reason == "bad_amount"


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=45), st.integers(), st.floats(), st.none(),
                 st.from_regex(r"\A[0-9]{1,12}(\.[0-9]{0,6})?([eE][+-]?[0-9]{1,7})?\Z")))
@example("1E+999999")
@example("1e30")
@example(10**5000)
@example("0.0000")
def test_any_signed_amount_is_redeemable_or_bad_amount(amount: Any) -> None:
    """Whatever amount a validly signed voucher holds: a bounded voucher or `bad_amount`."""
    payload = cbor2.dumps({"id": b"\x01" * 16, "gw": GW, "meter": "m", "amount": amount,
                           "currency": "EUR", "exp": 1})
    try:
        parsed = vouchers.parse_payload(payload, "k")
    except VoucherRefused as refused:
        assert refused.reason == "bad_amount"
        return
    assert 0 < parsed.amount <= core.MAX_AMOUNT
