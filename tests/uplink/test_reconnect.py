"""Reconnect schedule: capped at PENDING_BACKOFF_MAX_S (with jitter) while records are pending.

No timing is asserted: the attempts are watched through an injected Backoff. The seconds it
takes to deliver after an outage are measured by hil/bench/uplink_drain.py.
"""

import asyncio
import random
from decimal import Decimal
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage.records import ReadingSet, StoredValue
from storage.store import Store
from tests.harness.eventually import eventually_async
from tests.harness.uplink_site import GW, Site
from uplink.localbroker import Mosquitto
from uplink.mqtt import JITTER_FRACTION, PENDING_BACKOFF_MAX_S, Backoff
from uplink.service import FIRST_ACK_WAIT_S, unconfirmed_wait

ATTEMPTS_WATCHED = 6


class RecordingBackoff(Backoff):
    """The real schedule, with every (attempt, urgent, delay) it hands out kept."""

    def __init__(self, low: float, high: float, pending_max_s: float) -> None:
        super().__init__(low, high, random.Random(3), pending_max_s)
        self.calls: list[tuple[int, bool, float]] = []

    def delay(self, attempt: int, urgent: bool) -> float:
        value = super().delay(attempt, urgent)
        self.calls.append((attempt, urgent, value))
        return value


def test_pending_records_cap_the_delay_at_the_constant_with_jitter() -> None:
    backoff = Backoff(1.0, 300.0, random.Random(1))
    urgent = [backoff.delay(n, True) for n in range(40)]
    assert max(urgent) <= PENDING_BACKOFF_MAX_S
    assert min(urgent[5:]) >= PENDING_BACKOFF_MAX_S * (1 - JITTER_FRACTION)
    assert len({round(d, 6) for d in urgent[5:]}) > 1  # jittered, not one fixed period


def test_an_idle_link_still_backs_off_to_its_maximum() -> None:
    backoff = Backoff(1.0, 300.0, random.Random(1))
    assert backoff.delay(20, False) >= 300.0 * (1 - JITTER_FRACTION)
    assert backoff.delay(20, False) > PENDING_BACKOFF_MAX_S


def test_a_maximum_below_the_cap_is_kept() -> None:
    backoff = Backoff(0.1, 2.0, random.Random(1))
    assert max(backoff.delay(n, True) for n in range(30)) <= 2.0


def readings(start: int, count: int) -> list[ReadingSet]:
    return [ReadingSet(f"m{i % 10}", 1_700_000_000_000 + 1000 * i, (
        StoredValue("import_active_energy", Decimal(i), "kWh"),))
        for i in range(start, start + count)]


async def test_broker_outage_with_records_pending_probes_on_the_capped_schedule(
        broker: Mosquitto, store: Store, gw_key: Ed25519PrivateKey,
        server_key: Ed25519PrivateKey, tmp_path: Path) -> None:
    # high stays at 300 s: without the pending cap the waits would grow far past it
    site = Site(broker.url, store, gw_key, server_key, tmp_path / "he.db",
                backoff_min_s=0.05, backoff_max_s=300.0)
    recording = RecordingBackoff(0.05, 300.0, pending_max_s=0.4)
    site.uplink.backoff = recording
    await site.start()
    try:
        store.add_readings(readings(0, 50))
        site.uplink.wake()
        await site.drained()
        broker.stop()
        store.add_readings(readings(50, 50))  # pending while the broker is away
        await eventually_async(lambda: sum(u for _, u, _ in recording.calls) >= ATTEMPTS_WATCHED,
                               60, "reconnect attempts")
        urgent = [(n, d) for n, u, d in recording.calls if u]
        assert all(d <= 0.4 for _, d in urgent)
        assert [n for n, _ in urgent] == sorted(n for n, _ in urgent)  # consecutive failures
        assert max(n for n, _ in urgent) >= ATTEMPTS_WATCHED - 1  # past where 2**n exceeds it
        broker.start()
        await site.drained(60)
        assert site.hstore.record_ids(GW) == list(range(1, 101))
    finally:
        await site.stop()


def test_before_the_first_ack_batches_wait_a_short_doubling_time_capped() -> None:
    waits = [unconfirmed_wait(n, 30.0) for n in range(8)]
    assert waits[:3] == [FIRST_ACK_WAIT_S, 2 * FIRST_ACK_WAIT_S, 4 * FIRST_ACK_WAIT_S]
    assert max(waits) == PENDING_BACKOFF_MAX_S
    assert unconfirmed_wait(5, 0.5) == 0.5  # never longer than the configured ack timeout


async def test_batches_sent_before_the_headend_subscribed_are_resent_without_ack_timeout(
        broker: Mosquitto, store: Store, gw_key: Ed25519PrivateKey,
        server_key: Ed25519PrivateKey, tmp_path: Path) -> None:
    # ack_timeout_s is far beyond the drain deadline: only the first-ack wait can resend
    site = Site(broker.url, store, gw_key, server_key, tmp_path / "he.db", ack_timeout_s=600.0)
    uplink_task = asyncio.create_task(site.uplink.run())
    try:
        await site.uplink.wait_connected()
        store.add_readings(readings(0, 40))
        site.uplink.wake()
        await eventually_async(lambda: site.uplink.state()["in_flight"] > 0, 30, "a batch sent")
        headend_task = asyncio.create_task(site.headend.run())  # the sends above were dropped
        await site.headend.wait_connected()
        await site.drained(60)
        assert site.hstore.record_ids(GW) == list(range(1, 41))
        headend_task.cancel()
        await asyncio.gather(headend_task, return_exceptions=True)
    finally:
        uplink_task.cancel()
        await asyncio.gather(uplink_task, return_exceptions=True)
        site.hstore.close()
