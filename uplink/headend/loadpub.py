"""The fleet's side of a load test: publish every simulated gateway's batches to the broker
as its uplink would (QoS 1, at most `window` unacked per gateway, re-send from an ack's
`resend` or after `ack_timeout_s` without progress), and verify the signed acks."""

import threading
import time
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlparse

import paho.mqtt.client as paho
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from uplink.codec import decode_ack
from uplink.cose import parse_sign1, verify_sign1
from uplink.errors import UplinkError
from uplink.headend.fleet import SimGateway

# The gateway defaults (docs/uplink.md): unacked batches per gateway, re-send after.
WINDOW: Final = 4
ACK_TIMEOUT_S: Final = 30.0


@dataclass(slots=True)
class GwState:
    sim: SimGateway
    acked: int = 0
    next_seq: int = 1  # the next seq to publish
    progress: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class PublishStats:
    published: int = 0
    resent: int = 0
    acks: int = 0
    bad_acks: int = 0
    first_publish: float = 0.0
    last_ack: float = 0.0


class FleetPublisher:
    def __init__(self, broker_url: str, prefix: str, fleet: list[SimGateway],
                 server_key: Ed25519PublicKey) -> None:
        self.prefix = prefix
        self.server_key = server_key
        self.state = {g.gw: GwState(g) for g in fleet}
        self.stats = PublishStats()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._left = sum(1 for g in fleet if g.batches)
        url = urlparse(broker_url)
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="loadtest-fleet",
                                   protocol=paho.MQTTv5)
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)
        self._client.on_message = self._on_ack
        self._subscribed = threading.Event()
        self._client.on_subscribe = lambda *_args: self._subscribed.set()
        self._client.connect(url.hostname or "127.0.0.1", url.port or 1883, keepalive=60)
        self._client.subscribe(f"{prefix}/+/down/ack", qos=1)

    def _send(self, st: GwState) -> None:
        """Publish what the window allows (caller holds the lock)."""
        n = len(st.sim.batches)
        while st.next_seq <= min(n, st.acked + WINDOW):
            self._client.publish(f"{self.prefix}/{st.sim.gw}/up/batch",
                                 st.sim.batches[st.next_seq - 1], qos=1)
            st.next_seq += 1
            self.stats.published += 1

    def _on_ack(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        try:
            ack = decode_ack(verify_sign1(parse_sign1(bytes(msg.payload), max_bytes=4096),
                                          self.server_key))
        except UplinkError:
            self.stats.bad_acks += 1
            return
        with self._lock:
            st = self.state.get(ack.gw)
            if st is None:
                return
            self.stats.acks += 1
            if ack.ack > st.acked:
                was_done = st.acked >= len(st.sim.batches)
                st.acked = min(ack.ack, len(st.sim.batches))
                st.progress = time.monotonic()
                self.stats.last_ack = st.progress
                if not was_done and st.acked >= len(st.sim.batches):
                    self._left -= 1
                    if self._left == 0:
                        self._done.set()
            if ack.resend is not None and ack.resend < st.next_seq:
                self.stats.resent += st.next_seq - ack.resend
                st.next_seq = max(ack.resend, st.acked + 1)
            self._send(st)

    def run(self, timeout_s: float) -> bool:
        """Publish everything; True when every gateway's last batch was acked in time."""
        self._client.loop_start()
        try:
            if not self._subscribed.wait(30):
                raise UplinkError("broker did not confirm the ack subscription")
            self.stats.first_publish = time.monotonic()
            with self._lock:
                for st in self.state.values():
                    self._send(st)
            deadline = time.monotonic() + timeout_s
            while not self._done.wait(1.0) and time.monotonic() < deadline:
                self._resend_stalled()
            return self._done.is_set()
        finally:
            self._client.disconnect()
            self._client.loop_stop()

    def _resend_stalled(self) -> None:
        now = time.monotonic()
        with self._lock:
            for st in self.state.values():
                if st.acked < len(st.sim.batches) and now - st.progress > ACK_TIMEOUT_S:
                    self.stats.resent += st.next_seq - st.acked - 1
                    st.next_seq = st.acked + 1
                    st.progress = now
                    self._send(st)
