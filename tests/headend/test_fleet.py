"""A thousand simulated gateways, each on its own MQTT connection with its own client id,
key and chain (built by the real batcher), through a real Mosquitto into a real PostgreSQL
via two `gateway-headend serve` workers on one shared subscription: every record of every
gateway is stored exactly once, every chain is complete and every batch is acked."""

import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.harness.eventually import eventually
from uplink.headend.fleet import FleetSpec, build_fleet
from uplink.headend.loadpub import FleetPublisher
from uplink.headend.loadtest import (
    LoadOptions,
    check_stored,
    enrol_fleet,
    run,
    start_workers,
    stop_workers,
)
from uplink.keys import create_private_key
from uplink.localbroker import Mosquitto

# Few meters and minutes per gateway, a small batch cap: the point is the thousand
# connections and chains, and the whole test stays within a couple of minutes.
SPEC = FleetSpec(gateways=1000, meters=4, minutes=3, batch_cap=600)


def _sql(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query.encode()).fetchall()


@pytest.mark.broker
def test_thousand_gateways_two_workers_every_record_once(fleet_broker: Mosquitto,
                                                         pg_url: str) -> None:
    fleet = build_fleet(SPEC)
    assert len({g.gw for g in fleet}) == 1000
    assert all(len(g.batches) >= 3 for g in fleet)  # each gateway a chain, not one batch
    result = run(LoadOptions(SPEC, fleet_broker.url, pg_url, workers=2), fleet)
    assert result["ok"], result
    assert (result["connections"], result["all_acked"], result["bad_acks"]) == (1000, True, 0)
    assert (result["missing_records"], result["incomplete_gateways"], result["forks"],
            result["duplicate_records"]) == (0, 0, 0, 0)
    # the same, straight from the tables: each gateway's record ids once, its chain at its head
    records = sum(g.records for g in fleet)
    assert _sql(pg_url, "SELECT count(*), count(DISTINCT (gw, id)) FROM records") == [
        (records, records)]
    held = dict(_sql(pg_url, "SELECT gw, contiguous FROM gateways"))
    assert held == {g.gw: len(g.batches) for g in fleet}
    per_gw = dict(_sql(pg_url, "SELECT gw, count(*) FROM records GROUP BY gw"))
    assert per_gw == {g.gw: g.records for g in fleet}
    # every gateway's own connection announced it (retained status, as a gateway does)
    assert _sql(pg_url, "SELECT count(DISTINCT gw) FROM gateway_status") == [(1000,)]


@pytest.mark.broker
def test_gateways_reconnect_after_a_broker_restart(broker: Mosquitto, pg_url: str,
                                                   tmp_path: Path) -> None:
    """The broker restarts mid-run: every simulated gateway opens its connection again and
    sends from its last ack on, the workers resubscribe, and still every record is stored
    once and every batch acked."""
    spec = FleetSpec(gateways=5, meters=3, minutes=60, batch_cap=600)
    fleet = build_fleet(spec)
    key = create_private_key(tmp_path / "headend.pem")
    enrol_fleet(pg_url, fleet)
    procs = start_workers(2, broker.url, pg_url, tmp_path / "headend.pem", "mtr", tmp_path, 2)
    done: list[bool] = []
    try:
        # re-send after 3 s without progress: what the broker lost while the workers were
        # not yet subscribed again comes back soon
        pub = FleetPublisher(broker.url, "mtr", fleet, key.public_key(), ack_timeout_s=3.0)
        runner = threading.Thread(target=lambda: done.append(pub.run(240.0)))
        runner.start()
        eventually(lambda: pub.stats.acks >= 10, 120, "the first acks")
        broker.stop()
        broker.start()
        runner.join()
    finally:
        stop_workers(procs)
    assert done == [True] and pub.stats.reconnects >= len(fleet)
    check = check_stored(pg_url, fleet)
    assert (check["missing_records"], check["incomplete_gateways"], check["forks"],
            check["duplicate_records"]) == (0, 0, 0, 0)
