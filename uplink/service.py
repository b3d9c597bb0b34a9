"""The gateway's uplink service: drains the outbox as signed batches, handles acks and commands."""

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from storage import batches
from storage.batches import StoredBatch, load_command_results
from storage.errors import StorageError
from storage.store import Store, Transaction
from uplink.acks import PendingAck
from uplink.batcher import Batcher
from uplink.codec import decode_ack
from uplink.commands import CommandContext, CommandRegistry
from uplink.cose import parse_sign1, verify_sign1
from uplink.errors import BadMessage, BadSignature, UplinkError
from uplink.inbox import CommandInbox
from uplink.mqtt import PENDING_BACKOFF_MAX_S, Backoff, LinkConfig, LinkHandlers, MqttLink
from uplink.resend import ResendGuard, plan_resend, publish_plan
from uplink.settings import UplinkSettings, topics

LOGGER = logging.getLogger(__name__)
CMD_RESULT_PRIORITY: Final = 0
# Acks are tiny; anything larger on down/ack is refused unread.
MAX_ACK_BYTES: Final = 4096
# A batch the broker refused is retried this rarely: looping would only be refused again.
HOLD_RETRY_S: Final = 600.0
# MQTT 3.1.1 brokers refuse an oversized publish by disconnecting: this many disconnects in a
# row with the same large batch oldest in flight count as a refusal.
REFUSAL_DISCONNECTS: Final = 3
SUSPECT_BATCH_BYTES: Final = 8192
# PUBLISH fixed header, topic and properties on top of the batch bytes.
MQTT_PUBLISH_OVERHEAD: Final = 64
# wait_connected() gives up after this long.
CONNECT_WAIT_S: Final = 30.0
# flush() polls the backlog at this period.
FLUSH_POLL_S: Final = 0.05
# Until the first ack on a connection, batches in flight are re-sent after this long, doubling
# up to PENDING_BACKOFF_MAX_S: what went out before the head-end (re)subscribed after a broker
# restart is dropped by the broker, and waiting ack_timeout_s for it would stall the recovery.
FIRST_ACK_WAIT_S: Final = 1.0


def unconfirmed_wait(resends: int, ack_timeout_s: float) -> float:
    """How long batches in flight wait for an ack, on a connection that has had none yet,
    after `resends` re-sends on it."""
    return min(ack_timeout_s, PENDING_BACKOFF_MAX_S, FIRST_ACK_WAIT_S * 2 ** min(resends, 30))


class Uplink:
    """Run with `await uplink.run()` (until cancelled); `state()` for status, `flush()`."""

    def __init__(self, store: Store, settings: UplinkSettings, signing_key: Ed25519PrivateKey,
                 server_key: Ed25519PublicKey, commands: CommandRegistry,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings
        self.gw = settings.gateway_id
        self.server_key = server_key
        self.commands = commands
        self.clock = clock
        self.topics = topics(settings.topic_prefix, self.gw)
        store.register_outbox_kind("cmd_result", CMD_RESULT_PRIORITY, load_command_results)
        commands.register("status", self._status_command)
        self._inbox = CommandInbox(store, self.gw, server_key, commands, clock)
        self._batcher = Batcher(store, self.gw, signing_key, compress=settings.compress,
                                clock=clock)
        self._signing_key = signing_key
        self._resend_guard = ResendGuard(settings.ack_timeout_s)
        self._wake = asyncio.Event()
        self._up = asyncio.Event()
        self._link: MqttLink | None = None
        self._connected = False
        # Counts connections: a batch taken for one connection is not sent on the next, where
        # it would go before the older batches that the reconnect makes due again.
        self._epoch = 0
        self._in_flight: dict[int, float] = {}  # seq -> monotonic time sent
        self._sizes: dict[int, int] = {}
        self._mids: dict[int, int] = {}  # MQTT message id -> seq
        self._broker_max: int | None = None
        self._cap = settings.max_batch_bytes
        self._held: tuple[int, float] | None = None  # (seq, monotonic time to retry)
        self._disconnects: tuple[int, int] = (0, 0)  # (oldest seq in flight, count)
        self._tasks: set[asyncio.Task[None]] = set()
        self.last_error: str | None = None
        # the link's reconnect schedule; a test injects its own to watch the attempts
        self.backoff = Backoff(settings.backoff_min_s, settings.backoff_max_s)
        self._acks = PendingAck(store, settings.retain_acked_bytes, settings.retain_acked_days,
                                clock)
        self._in_commit: tuple[int | None, int | None] = (None, None)  # (ack, seq) written
        self._unconfirmed: int | None = 0  # re-sends on this connection before its first ack
        with store.transaction() as tx:
            self._acked = batches.acked_seq(tx)
            self._head, _ = batches.chain_head(tx)

    # --- public API ---

    async def run(self) -> None:
        """Keep the link up and drain the outbox until cancelled."""
        loop = asyncio.get_running_loop()
        self._link = MqttLink(self._link_config(), LinkHandlers(
            on_connected=self._on_connected, on_disconnected=self._on_disconnected,
            on_message=self._on_message, on_published=self._on_published), loop, self.backoff)
        self._link.start()
        try:
            while True:
                await self._pump()
                try:
                    async with asyncio.timeout(self.settings.batch_interval_s):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                self._wake.clear()
        finally:
            for task in self._tasks:
                task.cancel()
            self._commit_due_ack()  # a clean stop re-sends nothing already acked
            await self._link.stop()

    def state(self) -> dict[str, Any]:
        """Connected, backlog, last acked seq, chain head, batches in flight, last error."""
        return {"connected": self._connected, "backlog": self.store.outbox_backlog(),
                "last_ack": self._acked, "head": self._head, "in_flight": len(self._in_flight),
                "held": self._held[0] if self._held else None, "last_error": self.last_error}

    async def wait_connected(self, timeout: float = CONNECT_WAIT_S) -> None:
        """Wait until connected and subscribed (tests, demo); TimeoutError otherwise."""
        async with asyncio.timeout(timeout):
            await self._up.wait()

    def wake(self) -> None:
        """New outbox records: build and send now rather than at the next interval."""
        self._wake.set()

    async def flush(self, timeout: float | None = None) -> bool:
        """Send now and wait until the outbox is empty (True) or `timeout` passes (False)."""
        self._acks.urgent = True
        try:
            async with asyncio.timeout(timeout):
                while self.store.outbox_backlog():
                    self._wake.set()
                    await asyncio.sleep(FLUSH_POLL_S)
        except TimeoutError:
            return False
        finally:
            self._acks.urgent = False
        return True

    # --- riding on the readings' group commit (gateway/app/writer.py hooks) ---

    def in_readings_commit(self, tx: Transaction, stored: object) -> None:
        """Inside the readings' transaction: write the due ack and, when the link could send
        it now, build the next batch there too, so one commit a second carries them all.
        A failure here is rolled back to the savepoint and never costs the readings."""
        ack, seq = None, None
        tx.execute("SAVEPOINT uplink_in_commit")
        try:
            ack = self._acks.apply(tx)
            if (self._connected and self._held is None
                    and len(self._in_flight) < self.settings.max_in_flight):
                built = self._batcher.build_in(tx, self._batch_cap())
                seq = built.batch.seq if built is not None else None
        except Exception as exc:  # the readings commit regardless; the pump builds later
            tx.execute("ROLLBACK TO uplink_in_commit")
            ack, seq = None, None
            self.last_error = str(exc)
            LOGGER.error("batch_build_failed", extra={"reason": str(exc)})
        tx.execute("RELEASE uplink_in_commit")
        self._in_commit = (ack, seq)

    def after_readings_commit(self, stored: object) -> None:
        """The readings' transaction committed: what `in_readings_commit` wrote is durable."""
        (ack, seq), self._in_commit = self._in_commit, (None, None)
        self._acks.committed(ack)
        if seq is not None:
            self._head = max(self._head, seq)
        self._wake.set()

    # --- link events (on the asyncio loop) ---

    def _link_config(self) -> LinkConfig:
        s = self.settings
        return LinkConfig(
            url=s.broker_url, client_id=s.effective_client_id, mqtt_version=s.mqtt_version,
            keepalive_s=s.keepalive_s, clean_start=False, session_expiry_s=s.session_expiry_s,
            tls_ca=str(s.tls_ca) if s.tls_ca else None,
            tls_cert=str(s.tls_cert) if s.tls_cert else None,
            tls_key=str(s.tls_key) if s.tls_key else None,
            username=s.username, password=s.password,
            backoff_min_s=s.backoff_min_s, backoff_max_s=s.backoff_max_s,
            subscriptions=(self.topics["ack"], self.topics["cmd"]),
            will=(self.topics["status"], b"offline"), birth=(self.topics["status"], b"online"))

    def _on_connected(self, max_packet: int | None) -> None:
        self._connected = True
        self._unconfirmed = 0
        self._epoch += 1
        self._in_flight.clear()
        self._up.set()
        self._broker_max = max_packet
        LOGGER.info("uplink_connected", extra={"broker_max_packet": max_packet})
        self._wake.set()

    def _on_disconnected(self, reason: str) -> None:
        if self._connected:
            LOGGER.warning("uplink_disconnected", extra={"reason": reason})
        self._connected = False
        self._up.clear()
        if self._held is None:
            self.last_error = reason
        if self._in_flight:
            self._count_refusal_disconnect(min(self._in_flight))
        self._in_flight.clear()  # everything unacked is re-sent after reconnect
        self._mids.clear()

    def _count_refusal_disconnect(self, oldest: int) -> None:
        seq, count = self._disconnects
        count = count + 1 if seq == oldest else 1
        self._disconnects = (oldest, count)
        if count >= REFUSAL_DISCONNECTS and self._sizes.get(oldest, 0) >= SUSPECT_BATCH_BYTES:
            self._hold(oldest, f"broker disconnected {count} times on this batch")

    def _on_published(self, mid: int, reason: int) -> None:
        seq = self._mids.pop(mid, None)
        if seq is not None and reason >= 0x80:
            self._hold(seq, f"broker refused publish (reason code 0x{reason:02x})")

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic == self.topics["ack"]:
            self._spawn(self._handle_ack(payload))
        elif topic == self.topics["cmd"]:
            self._spawn(self._handle_command(payload))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- sending ---

    def _batch_cap(self) -> int:
        cap = self._cap
        if self._broker_max:
            cap = min(cap, self._broker_max - MQTT_PUBLISH_OVERHEAD - len(self.topics["batch"]))
        return cap

    async def _pump(self) -> None:
        if self._link is None:
            return
        if not self._connected:
            # pending records make the link probe the broker every few seconds (uplink/mqtt.py)
            self._link.set_urgent(self.store.outbox_backlog() > 0)
            return
        if self._acks.overdue():
            self._commit_due_ack()
        now = time.monotonic()
        if self._held is not None:
            if now < self._held[1]:
                return
            LOGGER.info("uplink_hold_retry", extra={"seq": self._held[0]})
            self._held = None
        self._expire_in_flight(now)
        epoch = self._epoch
        while (len(self._in_flight) < self.settings.max_in_flight and self._connected
               and self._held is None):
            try:
                batch = self._next_batch(set(self._in_flight))
            except StorageError as exc:
                self.last_error = str(exc)
                LOGGER.error("batch_build_failed", extra={"reason": str(exc)})
                return
            if (batch is None or not self._connected or self._epoch != epoch
                    or self._held is not None):
                # A batch taken while the link dropped or reconnected (or a hold began) goes
                # later, in seq order: sent first on a new connection it would reset the
                # refusal count of the oldest batch, and the head-end would see a gap.
                return
            if not self._send(batch):
                return  # the connection is gone: on_disconnected is on its way
            # A full batch takes tens to hundreds of ms to build on the loop (docs/storage.md):
            # let the polls and the writer run between two builds of a backlog.
            await asyncio.sleep(0)

    def _expire_in_flight(self, now: float) -> None:
        """Batches unacked for too long are due again (sent on by the pump)."""
        timeout = self.settings.ack_timeout_s
        if self._unconfirmed is not None:
            timeout = unconfirmed_wait(self._unconfirmed, timeout)
        if any(now - sent > timeout for sent in self._in_flight.values()):
            LOGGER.warning("ack_timeout", extra={"in_flight": sorted(self._in_flight),
                                                 "timeout_s": timeout})
            self._in_flight.clear()
            if self._unconfirmed is not None:
                self._unconfirmed += 1

    def _next_batch(self, exclude: set[int]) -> StoredBatch | None:
        """The oldest unacked batch not in flight, else a new one (on the loop, the store owner).
        A re-send writes nothing (sent_ms keeps the first send, set when it was built)."""
        with self.store.transaction() as tx:
            for batch in batches.unacked_batches(tx, self._acked + 1):
                if batch.seq not in exclude:
                    return batch
        with self.store.transaction() as tx:
            built = self._batcher.build_in(tx, self._batch_cap())
            # a due ack rides on this build; alone it waits for a commit to ride on
            ack = self._acks.apply(tx) if built is not None or self._acks.overdue() else None
        self._acks.committed(ack)
        if built is None:
            return None
        self._head = built.batch.seq
        return built.batch

    def _send(self, batch: StoredBatch) -> bool:
        assert self._link is not None
        try:
            mid = self._link.publish(self.topics["batch"], batch.data, announced_only=True)
        except UplinkError as exc:
            self.last_error = str(exc)
            LOGGER.warning("batch_publish_failed", extra={"seq": batch.seq, "reason": str(exc)})
            return False
        self._mids[mid] = batch.seq
        self._in_flight[batch.seq] = time.monotonic()
        self._sizes[batch.seq] = len(batch.data)
        LOGGER.debug("batch_sent", extra={"seq": batch.seq, "bytes": len(batch.data)})
        return True

    def _hold(self, seq: int, reason: str) -> None:
        if self._held is not None:
            return
        self._held = (seq, time.monotonic() + HOLD_RETRY_S)
        self._in_flight.clear()
        self._cap = max(1024, min(self._cap, self._sizes.get(seq, self._cap) // 2))
        self.last_error = f"batch {seq} held: {reason}"
        LOGGER.error("batch_refused", extra={"seq": seq, "reason": reason, "new_cap": self._cap})
        self.store.add_event("uplink_batch_refused", meter_id=None, severity="error",
                             data={"seq": seq, "reason": reason},
                             ts_ms=int(self.clock() * 1000))

    # --- acks ---

    async def _handle_ack(self, payload: bytes) -> None:
        try:
            ack = decode_ack(verify_sign1(parse_sign1(payload, max_bytes=MAX_ACK_BYTES),
                                          self.server_key))
        except (BadMessage, BadSignature) as exc:
            LOGGER.warning("ack_refused", extra={"reason": str(exc)})
            return
        if ack.gw != self.gw or ack.ack > self._head:
            LOGGER.warning("ack_refused", extra={"reason": "other gateway or never sent",
                                                 "gw": ack.gw, "ack": ack.ack})
            return
        self._unconfirmed = None  # the head-end hears us: ack_timeout_s from now on
        if ack.ack > self._acked:
            self._acks.note(ack.ack)  # written with the next commit (uplink/acks.py)
            self._acked = max(self._acked, ack.ack)
            for seq in [s for s in self._in_flight if s <= ack.ack]:
                del self._in_flight[seq]
                self._sizes.pop(seq, None)
        if ack.resend is not None:
            LOGGER.info("resend_requested", extra={"from_seq": ack.resend})
            if ack.resend <= self._acked:  # the server lost batches it had acked
                await self._serve_acked_resend(ack.resend)
            else:
                for seq in [s for s in self._in_flight if s >= ack.resend]:
                    del self._in_flight[seq]
        self._wake.set()

    def _commit_due_ack(self) -> None:
        try:
            self._acks.commit_now()
        except StorageError as exc:  # kept in memory: the next commit tries again
            self.last_error = str(exc)
            LOGGER.error("ack_commit_failed", extra={"reason": str(exc)})

    async def _serve_acked_resend(self, from_seq: int) -> None:
        """Publish the kept acked batches from `from_seq` on; declare the dropped ones gone."""
        if self._link is None or not self._resend_guard.allow(from_seq, self._acked,
                                                              time.monotonic()):
            return  # answered recently: the request is repeated with every ack until it lands
        self._commit_due_ack()  # the plan reads the acked batches from the store
        plan = plan_resend(self.store, self.gw, from_seq)
        assert self._link is not None
        try:
            publish_plan(self._link, self.topics, plan, self._signing_key, self.gw, self._acked)
        except UplinkError as exc:
            LOGGER.warning("resend_publish_failed", extra={"from_seq": from_seq,
                                                           "reason": str(exc)})

    # --- commands ---

    async def _handle_command(self, raw: bytes) -> None:
        await self._inbox.handle(raw)
        self._wake.set()

    async def _status_command(self, args: dict[str, Any], ctx: CommandContext) -> dict[str, Any]:
        return self.state()
