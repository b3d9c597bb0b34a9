"""A thousand simulated gateways, each on its own MQTT connection with its own client id,
key and chain (built by the real batcher), through a real Mosquitto into a real PostgreSQL
via two `gateway-headend serve` workers on one shared subscription: every record of every
gateway is stored exactly once, every chain is complete and every batch is acked."""

from typing import Any

import psycopg
import pytest

from uplink.headend.fleet import FleetSpec, build_fleet
from uplink.headend.loadtest import LoadOptions, run
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
