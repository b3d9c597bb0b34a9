"""The head-end side of remote management over the real signed uplink: a gateway's health
records and its config outcome events travel through Mosquitto into the head-end's store, and
`gateway-headend health` and the config push's wait read them back (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.clock import SystemClock
from gateway.remote.health import HealthReporter, HealthSampler, HealthSources, health_fields
from storage import health
from storage.store import Store
from tests.harness.uplink_site import GW, Site
from uplink.headend import cli
from uplink.headend.remote_records import RemoteRecords
from uplink.keys import create_private_key
from uplink.localbroker import Mosquitto
from uplink.records import register_record_encoder

pytestmark = pytest.mark.broker
SHA = "cd" * 32


def reporter(store: Store, tmp_path: Path) -> HealthReporter:
    store.register_outbox_kind(health.OUTBOX_KIND, health.OUTBOX_PRIORITY, health.by_ids)
    register_record_encoder(health.OUTBOX_KIND, health_fields)
    clock = SystemClock()
    sources = HealthSources(
        clock=clock, started_ms=clock.wall_ms(), data_dir=tmp_path,
        config_version=lambda: {"version": 2, "sha256": SHA},
        buses=lambda: {"rs485-1": {"protocol": "modbus", "counters": {"requests": 3}}},
        outbox_depth=store.outbox_backlog, clock_synced=lambda: True,
        components=dict, temperature_mc=lambda: None)
    return HealthReporter(store, HealthSampler(sources), 60)


async def test_health_and_config_outcome_reach_the_sqlite_headend(
        broker: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store.open(tmp_path / "gw.db")
    site = Site(broker.url, store, create_private_key(tmp_path / "gw.pem"),
                create_private_key(tmp_path / "he.pem"), tmp_path / "headend.db")
    await site.start()
    try:
        records = RemoteRecords(tmp_path / "headend.db")
        after = records.mark()
        reporter(store, tmp_path).record()
        store.add_event("config_applied", meter_id=None, ts_ms=SystemClock().wall_ms(),
                        data={"version": 2, "sha256": SHA, "previous_version": 1})
        site.uplink.wake()
        await site.drained()
        outcome = records.config_outcome(GW, SHA, after)
        assert outcome is not None and outcome["event"] == "config_applied"
        assert outcome["data"]["version"] == 2
        assert records.config_outcome(GW, "00" * 32, after) is None
        records.close()
    finally:
        await site.stop()
        store.close()
    assert cli.main(["health", GW, "--db", str(tmp_path / "headend.db")]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["gw"] == GW and shown["config"] == {"version": 2, "sha256": SHA}
    assert shown["buses"]["rs485-1"]["counters"] == {"requests": 3}
    assert shown["rss_bytes"] > 1_000_000 and shown["uptime_s"] >= 0
    assert cli.main(["health", "gw-none", "--db", str(tmp_path / "headend.db")]) == 1


def test_health_reads_the_postgresql_store(pg_url: str, capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    from uplink.headend.pg_store import connect

    conn = connect(pg_url)  # creates the schema as `serve` does
    try:
        conn.execute("INSERT INTO records (gw, id, seq, kind, ts_ms, meter, body) VALUES "
                     "(%s, 1, 1, 'health', 5, NULL, %s), (%s, 2, 1, 'event', 6, NULL, %s)",
                     (GW, json.dumps({"uptime_s": 9, "config": {"version": 4}}), GW,
                      json.dumps({"e": "config_rolled_back", "s": "error",
                                  "d": {"sha256": SHA, "reason": "not_healthy: bus-x"}})))
    finally:
        conn.close()
    records = RemoteRecords(pg_url)
    try:
        outcome = records.config_outcome(GW, SHA, 0)
        assert outcome is not None and outcome["event"] == "config_rolled_back"
        assert outcome["data"]["reason"] == "not_healthy: bus-x"
    finally:
        records.close()
    assert cli.main(["health", GW, "--db", pg_url]) == 0
    assert json.loads(capsys.readouterr().out)["config"] == {"version": 4}
