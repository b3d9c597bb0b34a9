"""Gateway Uplink to reference head-end through a real Mosquitto: delivery, chain, exact values."""

import asyncio
from decimal import Decimal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage.records import ReadingSet, StoredValue
from storage.store import Store
from tests.harness.uplink_site import GW, Site
from uplink.headend.server import HeadEnd
from uplink.headend.store import HeadendStore


def reading(meter: str, ts_ms: int, n: int) -> ReadingSet:
    values = tuple(StoredValue(q, Decimal(v), u) for q, v, u in (
        ("import_active_energy", f"{1000 + n}.25", "kWh"), ("voltage_l1", "230.10", "V"),
        ("frequency", "49.98", "Hz"), ("import_active_energy_t2", "7.5", "kWh"),
        ("odd_quantity", "-0.001", "")))
    return ReadingSet(meter, ts_ms, values)


async def test_readings_and_events_delivered_exactly_once(site: Site, store: Store) -> None:
    store.add_readings([reading(f"m{i % 7}", 1_700_000_000_000 + i, i) for i in range(500)])
    store.add_event("relay_open", meter_id="m1", data={"why": "credit"}, ts_ms=1_700_000_001_000)
    site.uplink.wake()
    await site.drained()
    hstore = site.headend.store
    exported = list(hstore.export(GW))
    assert len(exported) == 501
    assert [r["id"] for r in exported] == sorted({r["id"] for r in exported})
    first = next(r for r in exported if r["kind"] == "reading")
    assert first["body"]["values"]["voltage_l1"] == "230.10"
    assert first["body"]["values"]["import_active_energy_t2"] == "7.5"
    assert first["body"]["values"]["odd_quantity"] == "-0.001"
    event = next(r for r in exported if r["kind"] == "event")
    assert event["body"]["e"] == "relay_open" and event["body"]["m"] == "m1"
    # the event (priority 2) travels before the readings (priority 3) added earlier
    assert event["seq"] == 1
    assert hstore.anomalies(GW) == []
    state = site.uplink.state()
    assert state["backlog"] == 0 and state["last_ack"] == state["head"] >= 1


async def test_two_headend_workers_share_the_load(site: Site, store: Store,
                                                   gw_key: Ed25519PrivateKey,
                                                   server_key: Ed25519PrivateKey) -> None:
    second_store = HeadendStore(site.hstore.path)  # same database file, own connection
    second = HeadEnd(second_store, {GW: gw_key.public_key()}, server_key,
                     broker_url=site.headend.broker_url)
    task = asyncio.create_task(second.run())
    try:
        await second.wait_connected()
        for start in range(0, 400, 20):
            store.add_readings([reading(f"m{i % 5}", 1_700_000_000_000 + i, i)
                                for i in range(start, start + 20)])
            site.uplink.wake()
            await site.drained()  # one batch at a time: each goes to the next worker
        assert site.headend.stats.stored > 0 and second.stats.stored > 0
        assert site.hstore.record_ids(GW) == list(range(1, 401))
        assert not {a[2] for a in site.hstore.anomalies(GW)} & {"fork", "duplicate_record"}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        second_store.close()
