"""The head-end worker: shared subscription to every gateway's batches, verify, store, ack."""

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from uplink.codec import Ack, Command, encode_ack, encode_command
from uplink.cose import sign1
from uplink.errors import UplinkError
from uplink.headend.db import Store, record_status
from uplink.headend.store import IngestResult
from uplink.headend.verify import VerifiedBatch, verify_batch, verify_unavailable
from uplink.mqtt import LinkConfig, LinkHandlers, MqttLink
from uplink.settings import topics

LOGGER = logging.getLogger(__name__)
T = TypeVar("T")
SHARE_GROUP: Final = "headend"
HEADEND_KID: Final = b"headend"
# A command not executed within this time is refused by the gateway as expired.
DEFAULT_COMMAND_TTL_S: Final = 300
# How long send_command waits for the broker connection before giving up.
CONNECT_WAIT_S: Final = 30.0


@dataclass(slots=True)
class HeadendStats:
    stored: int = 0
    duplicates: int = 0
    forks: int = 0
    known_gaps: int = 0
    refused: int = 0
    acks_sent: int = 0
    records: int = 0
    last_error: str | None = None
    per_gw: dict[str, int] = field(default_factory=dict)


class HeadEnd:
    """One head-end worker; several may share a broker group and a database file."""

    def __init__(self, store: Store, enrolled: Mapping[str, Ed25519PublicKey],
                 key: Ed25519PrivateKey, *, broker_url: str, prefix: str = "mtr",
                 client_id: str | None = None, store_thread: bool = False,
                 store_threads: int = 1,
                 store_factory: Callable[[], Store] | None = None) -> None:
        """`store_thread`: store in a thread of its own, so that verifying and decoding the
        next batch overlaps the database round trips of this one (PostgreSQL; the store's
        connection is then used by that thread only). `store_threads` > 1 (with
        `store_factory` opening one more connection per thread): that many transactions in
        flight at once, so one worker is not bound by the latency of one transaction (its
        round trips and commit flush) but by its CPU."""
        self.store = store
        self.store_thread = store_thread or store_threads > 1
        self.store_threads = store_threads if store_factory is not None else 1
        self._factory = store_factory
        self._local = threading.local()
        self._stores_lock = threading.Lock()
        self._thread_stores: list[Store] = []
        self._pool: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.enrolled = enrolled
        self.key = key
        self.prefix = prefix
        self.broker_url = broker_url
        self.client_id = client_id or f"headend-{uuid.uuid4().hex[:8]}"
        self.stats = HeadendStats()
        self._link: MqttLink | None = None
        self._up = asyncio.Event()

    def _link_config(self) -> LinkConfig:
        return LinkConfig(url=self.broker_url, client_id=self.client_id, mqtt_version="5",
                          clean_start=True, backoff_min_s=0.2, backoff_max_s=5.0,
                          subscriptions=(f"$share/{SHARE_GROUP}/{self.prefix}/+/up/batch",
                                         f"$share/{SHARE_GROUP}/{self.prefix}/+/up/unavailable",
                                         # not shared: retained, every worker records it
                                         f"{self.prefix}/+/status"))

    async def run(self) -> None:
        """Serve until cancelled."""
        loop = asyncio.get_running_loop()
        handlers = LinkHandlers(on_connected=self._on_connected,
                                on_disconnected=lambda _reason: self._up.clear(),
                                on_message=self._on_message)
        self._loop = loop
        if self.store_thread:
            self._pool = ThreadPoolExecutor(max_workers=self.store_threads,
                                            thread_name_prefix="headend-store")
        self._link = MqttLink(self._link_config(), handlers, loop)
        self._link.start()
        try:
            await asyncio.Future()
        finally:
            await self._link.stop()
            if self._pool is not None:
                self._pool.shutdown(wait=True)  # what was taken is stored (and not acked)
                self._pool = None
            for extra in self._thread_stores[1:]:
                extra.close()
            self._thread_stores.clear()

    def _db(self) -> Store:
        """The store of the calling thread: the first store thread uses `self.store`, each
        further one its own connection from `store_factory`."""
        if self._pool is None:
            return self.store
        store: Store | None = getattr(self._local, "store", None)
        if store is None:
            with self._stores_lock:
                if not self._thread_stores:
                    store = self.store
                else:
                    assert self._factory is not None  # store_threads > 1 needs one
                    store = self._factory()
                self._thread_stores.append(store)
            self._local.store = store
        return store

    def _on_connected(self, _max_packet: int | None) -> None:
        self._up.set()
        # subscriptions confirmed: tools that start workers wait for this line
        LOGGER.info("headend_ready", extra={"client_id": self.client_id})

    async def wait_connected(self, timeout: float = CONNECT_WAIT_S) -> None:
        async with asyncio.timeout(timeout):
            await self._up.wait()

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic.endswith("/up/unavailable"):
            self._on_unavailable(topic, payload)
            return
        if topic.endswith("/status"):
            self._on_status(topic, payload)
            return
        try:
            batch = verify_batch(payload, self.enrolled)
            prepared = self.store.prepare(batch)  # CPU work, outside any transaction
        except UplinkError as exc:
            self._refused("batch_refused", topic, exc)
            return
        self._in_store(lambda: self._db().ingest(prepared),
                       lambda result: self._ingested(batch, result), "batch_refused", topic)

    def _ingested(self, batch: VerifiedBatch, result: IngestResult) -> None:
        gw = batch.payload.gw
        self._count(result.status, gw, len(batch.payload.records))
        LOGGER.debug("batch_ingested", extra={"gw": gw, "seq": batch.payload.seq,
                                              "status": result.status, "ack": result.ack})
        self._publish_ack(Ack(gw, result.ack, result.resend))

    def _refused(self, what: str, topic: str, exc: Exception) -> None:
        self.stats.refused += 1
        self.stats.last_error = str(exc)
        LOGGER.warning(what, extra={"topic": topic, "reason": str(exc)})

    def _in_store(self, work: Callable[[], T], done: Callable[[T], None], what: str,
                  topic: str) -> None:
        """Run `work` on the store (here, or in the store thread), then `done` on the loop."""
        if self._pool is None:
            try:
                result = work()
            except UplinkError as exc:
                self._refused(what, topic, exc)
                return
            done(result)
            return
        loop = self._loop
        assert loop is not None
        future = self._pool.submit(work)
        future.add_done_callback(lambda f: loop.call_soon_threadsafe(
            self._settle, f, done, what, topic))

    def _settle(self, future: "Future[T]", done: Callable[[T], None], what: str,
                topic: str) -> None:
        try:
            result = future.result()
        except UplinkError as exc:
            self._refused(what, topic, exc)
            return
        except Exception as exc:  # the database failed: no ack, the gateway sends it again
            self._refused("store_failed", topic, exc)
            return
        done(result)

    def _on_unavailable(self, topic: str, payload: bytes) -> None:
        """The gateway declares batches gone: a known gap, then the chain goes on past it."""
        try:
            gone = verify_unavailable(payload, self.enrolled)
        except UplinkError as exc:
            self._refused("unavailable_refused", topic, exc)
            return

        def done(result: IngestResult) -> None:
            if result.status == "known_gap":
                self.stats.known_gaps += 1
            self._publish_ack(Ack(gone.gw, result.ack, result.resend))
        self._in_store(lambda: self._db().record_unavailable(gone), done,
                       "unavailable_refused", topic)

    def _on_status(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        status = payload.decode("utf-8", errors="replace")[:16]
        if len(parts) != 3 or status not in ("online", "offline"):
            return  # not a gateway's status message: nothing to show
        ts_ms = int(time.time() * 1000)
        self._in_store(lambda: record_status(self._db(), parts[1], status, ts_ms),
                       lambda _none: None, "status_not_stored", topic)

    def _count(self, status: str, gw: str, n_records: int) -> None:
        if status == "stored":
            self.stats.stored += 1
            self.stats.records += n_records
            self.stats.per_gw[gw] = self.stats.per_gw.get(gw, 0) + 1
        elif status == "duplicate":
            self.stats.duplicates += 1
        else:
            self.stats.forks += 1

    def _publish_ack(self, ack: Ack) -> None:
        if self._link is None:
            return
        signed = sign1(encode_ack(ack), self.key, HEADEND_KID)
        self._link.publish(topics(self.prefix, ack.gw)["ack"], signed)
        self.stats.acks_sent += 1

    def publish_signed(self, topic: str, signed: bytes) -> None:
        """Publish raw bytes (QoS 1); used by tests to inject crafted down messages."""
        if self._link is None:
            raise UplinkError("head-end is not running")
        self._link.publish(topic, signed)

    async def send_command(self, gw: str, op: str, args: dict[str, Any] | None = None, *,
                           ttl_s: int = DEFAULT_COMMAND_TTL_S, cmd_id: str | None = None) -> str:
        """Sign and publish a command for `gw`; returns its id."""
        await self.wait_connected()
        cmd = Command(cmd_id or uuid.uuid4().hex, gw, int(time.time()) + ttl_s, op, args or {})
        self.publish_signed(topics(self.prefix, gw)["cmd"],
                            sign1(encode_command(cmd), self.key, HEADEND_KID))
        LOGGER.info("command_sent", extra={"gw": gw, "op": op, "id": cmd.id})
        return cmd.id


async def run_headend(headend: HeadEnd, stop: asyncio.Event) -> None:
    """Run a head-end until `stop` is set (the in-process API for `gateway demo`)."""
    task = asyncio.create_task(headend.run())
    try:
        await stop.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
