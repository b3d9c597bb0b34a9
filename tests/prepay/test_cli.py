"""`gateway prepay account|ledger` against a store the engine wrote."""

from __future__ import annotations

import json

import pytest

from gateway.cli.main import main
from tests.prepay.rig import Rig


async def test_account_and_ledger(rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    await rig.topup("shop-1", "12.50", "t1")
    rig.read("shop-1", "0")
    rig.advance(60)
    rig.read("shop-1", "1")
    db = str(rig.tmp / "gw.db")
    assert main(["prepay", "account", "--db", db, "--meter", "shop-1", "--json"]) == 0
    account = json.loads(capsys.readouterr().out)
    assert (account["balance"], account["last_load"], account["relay_closed"]) == (
        "12.2000", "12.5000", True)
    assert main(["prepay", "ledger", "--db", db, "--meter", "shop-1", "--last", "1",
                 "--json"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line)["kind"] == "charge"
    assert main(["prepay", "ledger", "--db", db, "--meter", "nobody"]) == 1
    assert main(["prepay", "account", "--db", str(rig.tmp / "none.db"), "--meter", "x"]) == 1
