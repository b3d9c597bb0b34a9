"""The fleet's side of a load test: one MQTT connection per simulated gateway, as a real fleet
has (client id = gateway id, its own subscription to its acks, a retained `online` status with
an `offline` will), each publishing its batches as its uplink would (QoS 1, at most `WINDOW`
unacked, re-send from an ack's `resend` or after `ACK_TIMEOUT_S` without progress) and
verifying the signed acks it receives.

One thread drives every connection through paho's external-loop API (`socket()`,
`loop_read`, `loop_write`, `loop_misc`) and a selector: a thousand gateways need a thousand
sockets, not a thousand threads. A connection the broker drops is opened again and sends
from its last ack on, as a gateway does.
"""

import contextlib
import logging
import resource
import selectors
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Final

import paho.mqtt.client as paho
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from uplink.codec import decode_ack
from uplink.cose import parse_sign1, verify_sign1
from uplink.errors import UplinkError
from uplink.headend.fleet import SimGateway
from uplink.settings import broker_address

LOGGER = logging.getLogger(__name__)
# The gateway defaults (docs/uplink.md): unacked batches per gateway, re-send after.
WINDOW: Final = 4
ACK_TIMEOUT_S: Final = 30.0
KEEPALIVE_S: Final = 60
# Packets read per readable socket per turn: one gateway's acks do not starve the others.
READ_PACKETS: Final = 8
# Connections opened between two turns of the loop, so CONNACKs are read as they come.
CONNECT_GROUP: Final = 50
# A dropped connection is opened again after this long (a gateway backs off; this is a test).
RECONNECT_S: Final = 1.0
# Sockets the fleet needs beyond one per gateway (stdio, the database, the workers' pipes).
SPARE_FILES: Final = 64
CLOSE_WAIT_S: Final = 10.0


@dataclass(slots=True)
class SimLink:
    """One simulated gateway's connection and its uplink state."""

    sim: SimGateway
    client: paho.Client
    acked: int = 0
    next_seq: int = 1  # the next seq to publish
    progress: float = field(default_factory=time.monotonic)
    ready: bool = False  # connected and its ack subscription confirmed
    lost_at: float | None = None
    writing: bool = False  # registered for EVENT_WRITE


@dataclass(slots=True)
class PublishStats:
    published: int = 0
    resent: int = 0
    acks: int = 0
    bad_acks: int = 0
    connections: int = 0
    reconnects: int = 0
    connect_s: float = 0.0
    first_publish: float = 0.0
    last_ack: float = 0.0


def raise_open_files(needed: int) -> int:
    """Raise this process's soft limit of open files towards `needed` (at most the hard
    limit); returns the limit now in place."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        return want
    return soft


class FleetPublisher:
    def __init__(self, broker_url: str, prefix: str, fleet: list[SimGateway],
                 server_key: Ed25519PublicKey, *, ack_timeout_s: float = ACK_TIMEOUT_S) -> None:
        self.prefix = prefix
        self.ack_timeout_s = ack_timeout_s
        self.server_key = server_key
        self.stats = PublishStats()
        self._addr = broker_address(broker_url)
        self._sel = selectors.DefaultSelector()
        self._links = [SimLink(g, self._make_client(g)) for g in fleet]
        for link in self._links:
            link.client.user_data_set(link)  # every callback gets its gateway's link
        self._dirty: dict[int, SimLink] = {}  # links whose client may want to write
        self._left = sum(1 for g in fleet if g.batches)
        self._publishing = False

    def _make_client(self, sim: SimGateway) -> paho.Client:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=sim.gw,
                             protocol=paho.MQTTv5)
        if self._addr.username:
            client.username_pw_set(self._addr.username, self._addr.password)
        if self._addr.tls:
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        client.will_set(self._topic(sim.gw, "status"), b"offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_ack
        client.on_disconnect = self._on_disconnect
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        return client

    def _topic(self, gw: str, what: str) -> str:
        return f"{self.prefix}/{gw}/{what}"

    # --- paho callbacks (all on the one loop thread) ---

    def _on_socket_open(self, client: paho.Client, link: SimLink, sock: Any) -> None:
        self._sel.register(sock, selectors.EVENT_READ, link)
        link.writing = False
        self._dirty[id(link)] = link

    def _on_socket_close(self, client: paho.Client, link: SimLink, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(sock)

    def _on_connect(self, client: paho.Client, link: SimLink, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            LOGGER.warning("loadtest_connect_refused", extra={"gw": link.sim.gw,
                                                              "reason": str(reason)})
            return
        client.publish(self._topic(link.sim.gw, "status"), b"online", qos=1, retain=True)
        client.subscribe(self._topic(link.sim.gw, "down/ack"), qos=1)

    def _on_subscribe(self, client: paho.Client, link: SimLink, mid: int, reasons: Any,
                      properties: Any) -> None:
        link.ready = True
        if self._publishing:  # a connection opened again: from the last ack on
            self._restart(link)

    def _on_disconnect(self, client: paho.Client, link: SimLink, flags: Any, reason: Any,
                       properties: Any) -> None:
        link.ready = False
        if self._publishing and link.lost_at is None:
            link.lost_at = time.monotonic()
            LOGGER.warning("loadtest_connection_lost", extra={"gw": link.sim.gw,
                                                              "reason": str(reason)})

    def _on_ack(self, client: paho.Client, link: SimLink, msg: paho.MQTTMessage) -> None:
        try:
            ack = decode_ack(verify_sign1(parse_sign1(bytes(msg.payload), max_bytes=4096),
                                          self.server_key))
        except UplinkError:
            self.stats.bad_acks += 1
            return
        if ack.gw != link.sim.gw:
            self.stats.bad_acks += 1
            return
        self.stats.acks += 1
        n = len(link.sim.batches)
        if ack.ack > link.acked:
            was_done = link.acked >= n
            link.acked = min(ack.ack, n)
            link.progress = self.stats.last_ack = time.monotonic()
            if not was_done and link.acked >= n:
                self._left -= 1
        if ack.resend is not None and ack.resend < link.next_seq:
            self.stats.resent += link.next_seq - max(ack.resend, link.acked + 1)
            link.next_seq = max(ack.resend, link.acked + 1)
        self._send(link)

    # --- publishing ---

    def _send(self, link: SimLink) -> None:
        """Publish what the window allows."""
        n = len(link.sim.batches)
        while link.ready and link.next_seq <= min(n, link.acked + WINDOW):
            link.client.publish(self._topic(link.sim.gw, "up/batch"),
                                link.sim.batches[link.next_seq - 1], qos=1)
            link.next_seq += 1
            self.stats.published += 1
        self._dirty[id(link)] = link

    def _restart(self, link: SimLink) -> None:
        """Send again from the last ack on (timeout, or a connection opened again)."""
        self.stats.resent += max(0, link.next_seq - link.acked - 1)
        link.next_seq = link.acked + 1
        link.progress = time.monotonic()
        self._send(link)

    # --- the loop ---

    def _turn(self, timeout: float) -> None:
        for key, events in self._sel.select(timeout):
            link: SimLink = key.data
            client = link.client
            rc = MQTTErrorCode.MQTT_ERR_SUCCESS
            if events & selectors.EVENT_READ:
                rc = client.loop_read(READ_PACKETS)
            if events & selectors.EVENT_WRITE and rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                rc = client.loop_write()
            self._dirty[id(link)] = link
        for link in self._dirty.values():
            self._want_write(link)
        self._dirty.clear()

    def _want_write(self, link: SimLink) -> None:
        sock = link.client.socket()
        want = sock is not None and link.client.want_write()
        if sock is None or want == link.writing:
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want else 0)
        try:
            self._sel.modify(sock, events, link)
            link.writing = want
        except (KeyError, ValueError):
            pass

    def _tick(self) -> None:
        """Keepalive, stalled windows, dropped connections: once a second per connection."""
        now = time.monotonic()
        for link in self._links:
            if link.client.socket() is not None:
                link.client.loop_misc()
                if (self._publishing and link.ready and link.acked < len(link.sim.batches)
                        and now - link.progress > self.ack_timeout_s):
                    self._restart(link)
            elif link.lost_at is not None and now - link.lost_at > RECONNECT_S:
                link.lost_at = None
                self.stats.reconnects += 1
                try:
                    link.client.reconnect()
                except OSError:
                    link.lost_at = now
            self._dirty[id(link)] = link

    def _connect_all(self, deadline: float) -> None:
        raise_open_files(len(self._links) + SPARE_FILES)
        t0 = time.monotonic()
        for i, link in enumerate(self._links):
            try:
                link.client.connect(self._addr.host, self._addr.port, KEEPALIVE_S,
                                    clean_start=True)
            except OSError as exc:
                raise UplinkError(f"loadtest: connection {i + 1} of {len(self._links)} "
                                  f"({link.sim.gw}) refused: {exc}") from None
            self.stats.connections += 1
            if i % CONNECT_GROUP == CONNECT_GROUP - 1:
                self._turn(0)
        last_tick = time.monotonic()
        while not all(link.ready for link in self._links):
            if time.monotonic() > deadline:
                waiting = sum(1 for link in self._links if not link.ready)
                raise UplinkError(f"loadtest: {waiting} gateways not connected and subscribed")
            self._turn(0.2)
            if time.monotonic() - last_tick >= 1.0:
                self._tick()
                last_tick = time.monotonic()
        self.stats.connect_s = round(time.monotonic() - t0, 2)

    def run(self, timeout_s: float) -> bool:
        """Connect every gateway, publish everything; True when every gateway's last batch
        was acked in time."""
        deadline = time.monotonic() + timeout_s
        try:
            self._connect_all(deadline)
            self._publishing = True
            self.stats.first_publish = time.monotonic()
            for link in self._links:
                self._send(link)
            last_tick = time.monotonic()
            while self._left > 0 and time.monotonic() < deadline:
                self._turn(0.2)
                if time.monotonic() - last_tick >= 1.0:
                    self._tick()
                    last_tick = time.monotonic()
            return self._left == 0
        finally:
            self._publishing = False
            self._close_all()

    def _close_all(self) -> None:
        """Disconnect every gateway with its will (MQTT 5 reason 0x04), so each status reads
        `offline` afterwards, as after a gateway stops; wait for the sockets to close."""
        with_will = ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message")
        for link in self._links:
            if link.client.socket() is not None:
                link.client.disconnect(reasoncode=with_will)
                self._dirty[id(link)] = link
        end = time.monotonic() + CLOSE_WAIT_S
        while time.monotonic() < end and any(link.client.socket() is not None
                                             for link in self._links):
            self._turn(0.1)
        for link in self._links:
            if (sock := link.client.socket()) is not None:
                sock.close()  # the broker did not close it in time: we are done with it
        self._sel.close()
