"""The analytics of a site with a stealing load reach the head-end signed over the real uplink
(Mosquitto) and come out of `gateway-headend export` by kind and meter."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.wiring.analytics import AnalyticsWiring
from storage.store import Store
from tests.gateway.analytics.test_balance_alarms import run_site, site_settings
from tests.harness.uplink_site import Site
from uplink.headend import cli
from uplink.keys import create_private_key
from uplink.localbroker import Mosquitto

pytestmark = pytest.mark.broker


async def test_intervals_balance_and_alarms_are_exported_by_the_headend(
        broker: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store.open(tmp_path / "gw.db")
    wiring = AnalyticsWiring(site_settings(), store)
    site = Site(broker.url, store, create_private_key(tmp_path / "gw.pem"),
                create_private_key(tmp_path / "he.pem"), tmp_path / "headend.db")
    await site.start()
    try:
        run_site(store, wiring, range(0, 61), lambda minute: Decimal("0.07"))
        site.uplink.wake()
        await site.drained()
    finally:
        await site.stop()
        store.close()
    db = str(tmp_path / "headend.db")

    def export(*args: str) -> list[dict[str, object]]:
        assert cli.main(["export", "--db", db, *args]) == 0
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    intervals = export("--kind", "intervals", "--meter", "feeder-b")
    assert len(intervals) == 4
    body = intervals[0]["body"]
    assert isinstance(body, dict) and body["qual"] == "measured" and body["q"] == (
        "import_active_energy")
    balance = export("--kind", "balance")
    assert {(b["body"]["node"], b["body"]["loss_pct"]) for b in balance  # type: ignore[index]
            } == {("trafo", "0.00"), ("feeder-a", "0.00"), ("feeder-b", "7.00")}
    events = export("--kind", "events")
    raised = [e["body"] for e in events if e["body"]["e"] == "alarm_raised"]  # type: ignore[index]
    assert [(r["d"]["alarm"], r["d"]["subject"]) for r in raised] == [  # type: ignore[index]
        ("balance_loss", "feeder-b")]
