"""Billing snapshots: at local midnight and at the billing instant, measured or interpolated."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.analytics.settings import AnalyticsSettings
from gateway.analytics.snapshots import BillingInstants, Snapshot, SnapshotTrack
from gateway.cli.main import main
from gateway.wiring.analytics import AnalyticsWiring
from storage.records import ReadingSet, StoredValue
from storage.store import Store

ZONE = "Europe/Berlin"
HOUR = 3_600_000


def local_ms(year: int, month: int, day: int, hour: int = 0) -> int:
    return int(dt.datetime(year, month, day, hour, tzinfo=ZoneInfo(ZONE)).timestamp()) * 1000


def track(max_gap_ms: int = 7 * 24 * HOUR) -> SnapshotTrack:
    return SnapshotTrack.daily_and_billing("m1", "volume", ZONE, 1, 6, max_gap_ms)


def feed(t: SnapshotTrack, readings: list[tuple[int, str]]) -> list[Snapshot]:
    out: list[Snapshot] = []
    for ts, v in readings:
        out.extend(t.add(ts, Decimal(v)))
    return out


def test_a_reading_on_midnight_is_measured() -> None:
    midnight = local_ms(2026, 3, 2)
    out = feed(track(), [(midnight - HOUR, "9"), (midnight, "10")])
    assert [(s.kind, s.value, s.quality) for s in out] == [
        ("daily", Decimal("10.000000"), "measured")]


def test_between_readings_the_snapshot_is_interpolated_with_the_gap() -> None:
    midnight = local_ms(2026, 3, 2)
    out = feed(track(), [(midnight - HOUR, "10"), (midnight + 3 * HOUR, "14")])
    assert [(s.value, s.quality, s.gap_ms) for s in out] == [
        (Decimal("11.000000"), "interpolated", 4 * HOUR)]


def test_a_gap_longer_than_the_limit_leaves_it_missing() -> None:
    midnight = local_ms(2026, 3, 2)
    out = feed(track(max_gap_ms=2 * HOUR), [(midnight - HOUR, "10"), (midnight + 3 * HOUR, "14")])
    assert [(s.value, s.quality) for s in out] == [(None, "missing")]


def test_billing_instant_is_day_and_hour_local_across_dst() -> None:
    instants = BillingInstants(ZONE, 1, 6)
    assert instants.next_after(local_ms(2026, 3, 15)) == local_ms(2026, 4, 1, 6)  # CEST
    assert instants.next_after(local_ms(2026, 12, 1, 6)) == local_ms(2027, 1, 1, 6)
    out = feed(track(), [(local_ms(2026, 4, 1, 5), "1"), (local_ms(2026, 4, 1, 7), "3")])
    assert [(s.kind, s.value) for s in out] == [("billing", Decimal("2.000000"))]


def test_midnight_of_the_dst_days_is_the_local_one() -> None:
    out = feed(track(), [(local_ms(2026, 10, 24, 23), "0"), (local_ms(2026, 10, 25, 1), "2")])
    assert [s.ts_ms for s in out] == [local_ms(2026, 10, 25)]


SITE = """
gateway_id = "gw-a"
timezone = "Europe/Berlin"
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
address = 7
profile = "eastron_sdm630"
[analytics]
"""


def test_gateway_snapshots_and_intervals_commands(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "site.toml").write_text(SITE)
    store = Store.open(tmp_path / "gw.db")
    store.upsert_meter("shop-1")
    wiring = AnalyticsWiring(AnalyticsSettings(timezone=ZONE), store)
    start = local_ms(2026, 3, 1, 23)
    for n in range(0, 25):  # every 5 minutes across midnight
        reading = ReadingSet("shop-1", start + n * 300_000, (
            StoredValue("import_active_energy", Decimal(100) + Decimal(n) / 4, "kWh"),))
        store.add_readings([reading], in_transaction=wiring.on_readings)
    store.close()
    config = str(tmp_path / "site.toml")
    assert main(["snapshots", "--config", config, "--meter", "shop-1", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows == [{"at": "2026-03-02T00:00+01:00", "kind": "daily",
                     "quantity": "import_active_energy", "value": "103.000000",
                     "quality": "measured", "gap_s": 0}]
    assert main(["intervals", "--config", config, "--meter", "shop-1",
                 "--date", "2026-03-01"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + 4 and all(len(line) <= 80 for line in lines)
    assert "0.750000" in lines[1] and "measured" in lines[1]
    assert main(["snapshots", "--config", config, "--meter", "nobody"]) == 1


def test_gateway_balance_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.config.loader import load_config

    text = SITE.replace("[analytics]\n", "") + """
[[meter]]
id = "shop-2"
bus = "tcp-1"
protocol = "modbus"
address = 8
profile = "eastron_sdm630"
[analytics]
[analytics.balance.shop-1]
children = ["shop-2"]
"""
    (tmp_path / "site.toml").write_text(text)
    config = load_config(tmp_path / "site.toml")
    store = Store.open(tmp_path / "gw.db")
    wiring = AnalyticsWiring(config.analytics, store)
    start = local_ms(2026, 3, 1, 10)
    for n in range(0, 13):  # an hour, every 5 minutes; shop-2 takes 96% of shop-1
        store.add_readings([ReadingSet(m, start + n * 300_000, (
            StoredValue("import_active_energy", Decimal(n) * k, "kWh"),))
            for m, k in (("shop-1", Decimal(1)), ("shop-2", Decimal("0.96")))],
            in_transaction=wiring.on_readings)
    store.close()
    assert main(["balance", "--config", str(tmp_path / "site.toml"), "--date", "2026-03-01",
                 "--json", "--intervals"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == {"node": "shop-1", "period": "day", "status": "complete",
                       "parent": "12.000000", "children": "11.520000", "loss": "0.480000",
                       "loss_pct": "4.00", "missing": ""}
    assert [r["period"] for r in rows[1:]] == ["10:00", "10:15", "10:30", "10:45"]
