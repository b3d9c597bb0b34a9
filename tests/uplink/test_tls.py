"""Mutual TLS from config: the uplink reaches a Mosquitto that requires a client certificate."""

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage.records import ReadingSet, StoredValue
from storage.store import Store
from tests.harness.tls import make_pki, mosquitto_tls_conf
from tests.harness.uplink_site import fast_settings
from uplink.commands import CommandRegistry
from uplink.headend.server import HeadEnd
from uplink.headend.store import HeadendStore
from uplink.localbroker import MOSQUITTO, Mosquitto
from uplink.service import Uplink

GW = "gw-test"


@pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto binary not installed")
async def test_uplink_over_mutual_tls(tmp_path: Path, store: Store, gw_key: Ed25519PrivateKey,
                                      server_key: Ed25519PrivateKey) -> None:
    pki = make_pki(tmp_path)
    plain = Mosquitto(tmp_path)  # the head-end uses a plain listener of the same broker
    tls = Mosquitto(tmp_path, extra_conf=mosquitto_tls_conf(pki)
                    + f"listener {plain.port} 127.0.0.1\nallow_anonymous true\n").start()
    hstore = HeadendStore(tmp_path / "he.db")
    headend = HeadEnd(hstore, {GW: gw_key.public_key()}, server_key, broker_url=plain.url)
    settings = fast_settings(f"mqtts://127.0.0.1:{tls.port}", tls_ca=pki["ca.crt"],
                             tls_cert=pki["client.crt"], tls_key=pki["client.key"])
    uplink = Uplink(store, settings, gw_key, server_key.public_key(), CommandRegistry())
    tasks = [asyncio.create_task(headend.run()), asyncio.create_task(uplink.run())]
    try:
        await headend.wait_connected()
        await uplink.wait_connected()
        store.add_readings([ReadingSet("m1", 1_700_000_000_000, (
            StoredValue("import_active_energy", Decimal("1.5"), "kWh"),))])
        uplink.wake()
        assert await uplink.flush(30)
        assert hstore.record_ids(GW) == [1]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        hstore.close()
        tls.stop()
