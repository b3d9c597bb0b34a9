"""`gateway-headend voucher issue|receipts` against the gateway's real voucher code path.

Vouchers come from the CLI, are redeemed by `prepay.vouchers.VoucherReader` wired exactly as
the service wires it (`gateway.wiring.prepay`: utility keys from `voucher_keys`, receipts
signed with the gateway key file), and the stick's receipts go back through the CLI.
"""

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.cli.cmd_keys import key_path, keys_init
from gateway.wiring.prepay import receipt_signer, voucher_verifier
from prepay.vouchers import VoucherReader
from tests.prepay.rig import Rig, site_config, working_hours_now
from uplink.cose import parse_sign1, sign1
from uplink.headend import cli

GW = "gw-site-7"


@dataclass
class Office:
    """The back office's files and a gateway site, as two parties see them."""

    tmp: Path
    utility_key: Path  # private, back office
    gateway_pub: Path  # what `gateway keys show` printed, enrolled at the back office
    gateway_state: Path
    out: Path
    rig: Rig
    reader: VoucherReader

    def issue(self, *extra: str) -> None:
        argv = ["voucher", "issue", "--gw", GW, "--meter", "shop-1", "--key",
                str(self.utility_key), "--out", str(self.out), "--json", *extra]
        assert cli.main(argv) == 0

    def receipts(self, stick: Path, *extra: str) -> int:
        return cli.main(["voucher", "receipts", str(stick), "--ledger",
                         str(self.out / "issued.jsonl"),
                         "--gateway-key", f"{GW}={self.gateway_pub}", *extra])


@pytest.fixture
def office(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Office]:
    utility = tmp_path / "office" / "utility-2026.pem"
    assert cli.main(["keys", "init", "--key", str(utility)]) == 0  # key management: reused
    utility_pub = tmp_path / "site" / "utility-2026.pub.pem"
    utility_pub.parent.mkdir()
    utility_pub.write_text(capsys.readouterr().out)
    state = tmp_path / "site" / "state"
    gateway_pub = tmp_path / "office" / "gw.pub.pem"
    gateway_pub.write_text(keys_init(state))
    rig = Rig(tmp_path / "site", site_config(voucher_keys={"utility-2026": str(utility_pub)}))
    rig.now = working_hours_now()
    reader = VoucherReader(rig.engine, GW, voucher_verifier(rig.settings),
                           receipt_signer(key_path(state), GW))
    yield Office(tmp_path, utility, gateway_pub, state, tmp_path / "office" / "run-1", rig,
                 reader)
    rig.store.close()


def issued(capsys: pytest.CaptureFixture[str]) -> list[dict[str, str]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def stick_with(office: Office, vouchers: list[dict[str, str]]) -> Path:
    stick = office.tmp / "stick"
    (stick / "vouchers").mkdir(parents=True, exist_ok=True)
    for v in vouchers:
        shutil.copy(office.out / v["file"], stick / "vouchers")
    return stick


def test_issued_voucher_is_redeemed_by_the_gateway_and_reconciles(
        office: Office, capsys: pytest.CaptureFixture[str]) -> None:
    office.issue("--amount", "20.00", "--count", "3")
    batch = issued(capsys)
    assert len({v["id"] for v in batch}) == 3
    stick = stick_with(office, batch[:2])  # the third stays in the office
    outcomes = office.reader.on_mounts([str(stick)])
    assert [o.status for o in outcomes] == ["redeemed", "redeemed"]
    assert office.rig.account("shop-1").balance == 2 * 200_000
    assert office.receipts(stick, "--json") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_id = {r["voucher"]: r for r in rows}
    assert len(rows) == 3
    for v in batch[:2]:
        assert by_id[v["id"]]["status"] == "redeemed"
        assert by_id[v["id"]]["meter"] == "shop-1" and by_id[v["id"]]["amount"] == "20.0000"
    assert by_id[batch[2]["id"]]["status"] == "not_redeemed"
    assert by_id[batch[2]["id"]]["expired"] is False


def test_forged_tampered_unknown_and_garbage_receipts_are_reported(
        office: Office, capsys: pytest.CaptureFixture[str]) -> None:
    office.issue("--amount", "5.00")
    [voucher] = issued(capsys)
    stick = stick_with(office, [voucher])
    [outcome] = office.reader.on_mounts([str(stick)])
    assert outcome.status == "redeemed"
    receipts = stick / "receipts"
    genuine = (receipts / f"{voucher['id']}.cose").read_bytes()
    body = cbor2.loads(parse_sign1(genuine, max_bytes=4096).payload)
    forged = dict(body, id=b"\x11" * 16, amount="500.0000")
    (receipts / ("11" * 16 + ".cose")).write_bytes(
        sign1(cbor2.dumps(forged), Ed25519PrivateKey.generate(), GW.encode()))
    tampered = genuine.replace(b"5.0000", b"9.0000")
    (receipts / "tampered.cose").write_bytes(tampered)
    signer = receipt_signer(key_path(office.gateway_state), GW)  # the gateway's own key
    (receipts / ("22" * 16 + ".cose")).write_bytes(
        signer(cbor2.dumps(dict(body, id=b"\x22" * 16))))
    (receipts / "junk.cose").write_bytes(b"not a receipt")
    assert office.receipts(stick, "--json") == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_file = {r["file"]: r for r in rows}
    assert by_file[f"{voucher['id']}.cose"]["status"] == "redeemed"
    assert by_file[f"{'22' * 16}.cose"]["status"] == "unknown"
    assert by_file[f"{'22' * 16}.cose"]["voucher"] == "22" * 16
    for name in (f"{'11' * 16}.cose", "tampered.cose", "junk.cose"):
        assert by_file[name]["status"] == "bad_signature", name
        assert "voucher" not in by_file[name]  # nothing of an unverified file is believed
    assert len(rows) == 5
    assert office.receipts(stick) == 1
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["status", "voucher", "gw", "meter", "amount", "currency",
                                "redeemed", "detail"]
    assert table[-1] == "3 bad_signature, 1 redeemed, 1 unknown"


@pytest.mark.parametrize(("extra", "named"), [
    (["--amount", "0"], "--amount"),
    (["--amount", "-5"], "--amount"),
    (["--amount", "1.23456"], "--amount"),
    (["--amount", "1e3"], "--amount"),
    (["--amount", "NaN"], "--amount"),
    (["--amount", "1000.01"], "--max-amount"),
    (["--amount", "5", "--currency", "eur"], "--currency"),
    (["--amount", "5", "--count", "0"], "--count"),
    (["--amount", "5", "--count", "501"], "--count"),
    (["--amount", "5", "--expires", "2020-01-01"], "--expires"),
    (["--amount", "5", "--expires", "next week"], "--expires"),
    (["--amount", "5", "--expires", "2030-01-01T00:00:00"], "--expires"),
    (["--amount", "5", "--meter", ""], "meter"),
])
def test_bad_issue_input_exits_2_and_writes_nothing(
        office: Office, extra: list[str], named: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["voucher", "issue", "--gw", GW, "--meter", "shop-1", "--key",
            str(office.utility_key), "--out", str(office.out), *extra]
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert named in captured.err
    assert not office.out.exists()


def test_ledger_records_every_voucher_and_later_runs_append(
        office: Office, capsys: pytest.CaptureFixture[str]) -> None:
    office.issue("--amount", "1.5", "--count", "40", "--expires", "2099-12-31",
                 "--currency", "EUR")
    office.issue("--amount", "2.25")
    printed = issued(capsys)
    ledger = [json.loads(line) for line in (office.out / "issued.jsonl").read_text().splitlines()]
    assert [e["id"] for e in ledger] == [v["id"] for v in printed]
    assert len({e["id"] for e in ledger}) == 41
    assert sorted(p.name for p in (office.out / "vouchers").iterdir()) == sorted(
        f"{e['id']}.cose" for e in ledger)
    assert {e["amount"] for e in ledger} == {"1.5000", "2.2500"}
    assert ledger[0]["kid"] == "utility-2026" and ledger[0]["gw"] == GW
    assert printed[0]["expires"] == "2099-12-31T23:59:59+00:00"


def test_receipts_refuse_a_missing_directory_or_ledger(
        office: Office, capsys: pytest.CaptureFixture[str]) -> None:
    assert office.receipts(office.tmp / "no-stick") == 1
    assert "no-stick" in capsys.readouterr().err
    (office.tmp / "stick").mkdir()
    assert office.receipts(office.tmp / "stick") == 1  # no issue run yet: no ledger
    assert "issued.jsonl" in capsys.readouterr().err
    assert cli.main(["voucher", "receipts", str(office.tmp / "stick"), "--ledger",
                     str(office.tmp / "x.jsonl")]) == 2
    assert "--gateway-key" in capsys.readouterr().err
