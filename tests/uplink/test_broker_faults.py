"""Broker killed and restarted mid-stream; MQTT 3.1.1; a broker packet limit below the cap."""

import asyncio
from decimal import Decimal
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage.batches import StoredBatch
from storage.records import ReadingSet, StoredValue
from storage.store import Store
from tests.harness.eventually import eventually, eventually_async
from tests.harness.uplink_site import GW, Site
from uplink.localbroker import Mosquitto
from uplink.service import REFUSAL_DISCONNECTS

# Bounds for broken waits on a loaded CI machine, never speed requirements.
HELD_S = 30.0
LOG_DEADLINE_S = 30.0


def readings(start: int, count: int) -> list[ReadingSet]:
    return [ReadingSet(f"m{i % 50}", 1_700_000_000_000 + 1000 * i, (
        StoredValue("import_active_energy", Decimal(f"{i}.{i % 100:02d}"), "kWh"),
        StoredValue("voltage_l1", Decimal("229.9"), "V"))) for i in range(start, start + count)]


def assert_exactly_once(site: Site, total: int) -> None:
    assert site.hstore.record_ids(GW) == list(range(1, total + 1))
    kinds = {a[2] for a in site.hstore.anomalies(GW)}
    assert not kinds & {"fork", "duplicate_record"}, site.hstore.anomalies(GW)
    state = site.uplink.state()
    assert state["backlog"] == 0
    assert site.hstore.contiguous(GW) == state["head"] == state["last_ack"]


async def test_broker_killed_and_restarted_mid_stream(
        broker: Mosquitto, store: Store, gw_key: Ed25519PrivateKey,
        server_key: Ed25519PrivateKey, tmp_path: Path) -> None:
    site = await Site(broker.url, store, gw_key, server_key, tmp_path / "he.db",
                      max_batch_bytes=2048).start()
    try:
        total = 0
        for round_ in range(3):
            for _ in range(10):
                store.add_readings(readings(total, 40))
                total += 40
                site.uplink.wake()
                await asyncio.sleep(0.01)
            broker.stop()  # mid-stream: batches are in flight
            store.add_readings(readings(total, 200))  # meters keep being read
            total += 200
            await asyncio.sleep(0.2 * (round_ + 1))
            broker.start()
        await site.drained(60)
        assert_exactly_once(site, total)
    finally:
        await site.stop()


async def test_mqtt_311_delivery(broker: Mosquitto, store: Store, gw_key: Ed25519PrivateKey,
                                 server_key: Ed25519PrivateKey, tmp_path: Path) -> None:
    site = await Site(broker.url, store, gw_key, server_key, tmp_path / "he.db",
                      mqtt_version="3.1.1", compress=False).start()
    try:
        store.add_readings(readings(0, 300))
        site.uplink.wake()
        await site.drained()
        assert_exactly_once(site, 300)
    finally:
        await site.stop()


async def test_batches_respect_broker_packet_limit(
        tmp_path: Path, store: Store, gw_key: Ed25519PrivateKey,
        server_key: Ed25519PrivateKey) -> None:
    limited = Mosquitto(tmp_path, extra_conf="max_packet_size 4096").start()
    try:
        site = await Site(limited.url, store, gw_key, server_key, tmp_path / "he.db",
                          compress=False).start()
        try:
            store.add_readings(readings(0, 1000))
            site.uplink.wake()
            await site.drained()
            assert_exactly_once(site, 1000)
            assert site.uplink.state()["head"] > 5  # split to fit 4 KiB, not one 64 KiB batch
        finally:
            await site.stop()
    finally:
        limited.stop()


async def test_refused_batch_is_held_not_resent_in_a_loop(
        tmp_path: Path, store: Store, gw_key: Ed25519PrivateKey,
        server_key: Ed25519PrivateKey) -> None:
    # MQTT 3.1.1 has no CONNACK packet limit: the broker disconnects on an oversized publish.
    limited = Mosquitto(tmp_path, extra_conf="max_packet_size 8192").start()
    try:
        site = await Site(limited.url, store, gw_key, server_key, tmp_path / "he.db",
                          mqtt_version="3.1.1", compress=False, max_batch_bytes=32768).start()
        try:
            store.add_readings(readings(0, 2000))
            site.uplink.wake()
            await eventually_async(lambda: site.uplink.state()["held"] is not None, HELD_S,
                                   "a held batch")
            state = site.uplink.state()
            assert state["held"] == 1 and "held" in state["last_error"]
            events = [e.kind for e in store.recent_events(10)]
            assert "uplink_batch_refused" in events
        finally:
            await site.stop()
    finally:
        limited.stop()
    log = limited.log.read_text()
    # REFUSAL_DISCONNECTS attempts, then held: not a loop
    assert log.count("oversize packet") == REFUSAL_DISCONNECTS, log[-3000:]


async def test_puback_refusal_holds_batch(tmp_path: Path, store: Store,
                                          gw_key: Ed25519PrivateKey,
                                          server_key: Ed25519PrivateKey) -> None:
    # The ACL lets the gateway read its down topics but not publish batches: MQTT 5 brokers
    # answer such a publish with PUBACK 0x87 (not authorised).
    acl = tmp_path / "acl"
    acl.write_text("pattern readwrite mtr/%c/status\npattern read mtr/%c/down/#\n"
                   "user headend\ntopic readwrite #\n")
    strict = Mosquitto(tmp_path, extra_conf=f"acl_file {acl}\nlog_type all").start()
    try:
        site = Site(strict.url, store, gw_key, server_key, tmp_path / "he.db")
        site.headend.broker_url = strict.url.replace("mqtt://", "mqtt://headend@")
        await site.start()
        try:
            store.add_readings(readings(0, 10))
            site.uplink.wake()
            await eventually_async(lambda: site.uplink.state()["held"] is not None, HELD_S,
                                   "a held batch")
            assert "0x87" in site.uplink.state()["last_error"]
            assert "uplink_batch_refused" in [e.kind for e in store.recent_events(5)]
        finally:
            await site.stop()
    finally:
        strict.stop()
    denied = strict.log.read_text().count("Denied PUBLISH from gw-test")
    assert denied == 1  # held at the first refusal: not re-sent in a loop


async def test_batch_taken_before_a_reconnect_waits_for_the_oldest(
        tmp_path: Path, store: Store, gw_key: Ed25519PrivateKey,
        server_key: Ed25519PrivateKey) -> None:
    # Under load the pump's build of batch 2 can outlast a refusal disconnect and the reconnect
    # that follows (the flaky run of the test above counted 5 oversize disconnects). This makes
    # that interleaving certain: the second build waits until the broker saw the new connection
    # (the network thread reconnects while the loop is busy building).
    limited = Mosquitto(tmp_path, extra_conf="max_packet_size 8192").start()
    try:
        site = Site(limited.url, store, gw_key, server_key, tmp_path / "he.db",
                    mqtt_version="3.1.1", compress=False, max_batch_bytes=32768)
        uplink = site.uplink
        real_next = uplink._next_batch
        taken = [0]  # batches taken (a pump before the readings were added takes none)

        def next_batch(exclude: set[int]) -> StoredBatch | None:
            if taken[0] == 1:  # the build right after batch 1 went out on connection 1
                # stalls the loop (the build runs on it) while the network thread reconnects
                wait_for_log(limited, f"as {GW} ", 2)
            batch = real_next(exclude)
            taken[0] += batch is not None
            return batch

        uplink._next_batch = next_batch  # type: ignore[method-assign]
        await site.start()
        try:
            store.add_readings(readings(0, 2000))
            uplink.wake()
            await eventually_async(lambda: uplink.state()["held"] is not None, HELD_S,
                                   "a held batch")
            assert uplink.state()["held"] == 1
        finally:
            await site.stop()
    finally:
        limited.stop()
    log = limited.log.read_text()
    assert log.count("oversize packet") == REFUSAL_DISCONNECTS, log[-3000:]


def wait_for_log(broker: Mosquitto, text: str, count: int) -> None:
    """Block (the event loop too, on purpose) until the broker logged `text` `count` times."""
    eventually(lambda: broker.log.read_text().count(text) >= count, LOG_DEADLINE_S,
               f"broker logging {text!r} {count} times")


async def test_publish_while_the_loop_lags_a_reconnect_is_not_sent_twice(
        tmp_path: Path, store: Store, gw_key: Ed25519PrivateKey,
        server_key: Ed25519PrivateKey) -> None:
    # A busy event loop can publish after the network thread already replaced the connection:
    # paho queued that publish on the fresh client and sent it at CONNACK by itself, and the
    # uplink then sent the batch again on that connection.
    verbose = Mosquitto(tmp_path, extra_conf="log_type all").start()
    try:
        # A long ack timeout: a duplicate here can only come from the double send.
        site = Site(verbose.url, store, gw_key, server_key, tmp_path / "he.db",
                    ack_timeout_s=120.0)
        real_send, sends = site.uplink._send, [0]

        def lagging_send(batch: StoredBatch) -> bool:
            sends[0] += 1
            if sends[0] == 1:  # the loop stalls here while the link drops and comes back
                verbose.stop()
                verbose.start()
                wait_for_log(verbose, f"as {GW} ", 2)
                wait_for_log(verbose, "mtr/+/up/batch (QoS 1)", 2)  # head-end is back
            return real_send(batch)

        site.uplink._send = lagging_send  # type: ignore[method-assign]
        await site.start()
        try:
            store.add_readings(readings(0, 5))
            site.uplink.wake()
            await site.drained()
            assert_exactly_once(site, 5)
            assert site.headend.stats.duplicates == 0
        finally:
            await site.stop()
    finally:
        verbose.stop()
