"""paho-mqtt 2.x in its own thread, handing every event to the asyncio loop.

The network thread owns connect, reconnect (exponential backoff with jitter, capped at
PENDING_BACKOFF_MAX_S while records are pending) and paho's loop;
the asyncio side only calls `publish()` (thread-safe in paho) and receives callbacks through
`loop.call_soon_threadsafe`, so the event loop never blocks on the network.
"""

import asyncio
import logging
import random
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from uplink.errors import UplinkError
from uplink.settings import broker_address

LOGGER = logging.getLogger(__name__)
# paho's select() tick: bounds how long stop() waits for the network thread to notice.
LOOP_TICK_S: Final = 0.2
# Jitter spreads reconnects of a fleet of gateways after a broker restart.
JITTER_FRACTION: Final = 0.5
# stop() waits this long for the broker to acknowledge the `offline` status before giving up.
OFFLINE_PUBACK_WAIT_S: Final = 5.0
# While records wait to be sent the broker is probed at least this often, so delivery resumes
# within this long of its return (docs/uplink.md, "Reconnecting"); an idle link backs off to
# backoff_max_s, which spares a fleet's broker when nothing is due.
PENDING_BACKOFF_MAX_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """How to reach the broker; built from UplinkSettings or the head-end's command line."""

    url: str
    client_id: str
    mqtt_version: str = "5"
    keepalive_s: int = 60
    clean_start: bool = False
    session_expiry_s: int = 7 * 24 * 3600
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    username: str | None = None
    password: str | None = None
    backoff_min_s: float = 1.0
    backoff_max_s: float = 300.0
    subscriptions: tuple[str, ...] = ()
    will: tuple[str, bytes] | None = None  # retained, QoS 1
    birth: tuple[str, bytes] | None = None  # retained, QoS 1, on every connect


@dataclass(slots=True)
class LinkHandlers:
    """Callbacks run on the asyncio loop."""

    on_connected: Callable[[int | None], None] = lambda max_packet: None
    on_disconnected: Callable[[str], None] = lambda reason: None
    on_message: Callable[[str, bytes], None] = lambda topic, payload: None
    on_published: Callable[[int, int], None] = lambda mid, reason: None


def backoff_delay(attempt: int, low: float, high: float, rng: random.Random) -> float:
    """Exponential delay for the n-th consecutive failure, capped, with downward jitter."""
    base = min(high, low * 2 ** min(attempt, 30))
    return base * (1 - JITTER_FRACTION * rng.random())


class Backoff:
    """The reconnect schedule: exponential up to `high`, but never above `pending_max_s`
    while records are pending (`urgent`). Injected in tests."""

    def __init__(self, low: float, high: float, rng: random.Random | None = None,
                 pending_max_s: float = PENDING_BACKOFF_MAX_S) -> None:
        self.low, self.high, self.pending_max_s = low, high, pending_max_s
        self.rng = rng or random.Random()

    def delay(self, attempt: int, urgent: bool) -> float:
        cap = min(self.high, self.pending_max_s) if urgent else self.high
        return backoff_delay(attempt, min(self.low, cap), cap, self.rng)


class MqttLink:
    """One MQTT connection kept up by a background thread until stop()."""

    def __init__(self, cfg: LinkConfig, handlers: LinkHandlers,
                 loop: asyncio.AbstractEventLoop, backoff: Backoff | None = None) -> None:
        self.cfg = cfg
        self._handlers = handlers
        self._loop = loop
        self._stop = threading.Event()
        # Set by stop() and by set_urgent(True): ends a reconnect wait early.
        self._nudge = threading.Event()
        self._urgent = False
        self._connected = threading.Event()
        self.backoff = backoff or Backoff(cfg.backoff_min_s, cfg.backoff_max_s)
        self._pending_subs: set[int] = set()
        self._max_packet: int | None = None
        self._addr = broker_address(cfg.url)
        self._client = self._make_client()
        # The client and its generation change together; a publish reads both under the lock.
        self._swap = threading.Lock()
        self._generation = 0  # one per connection (each has its own paho client)
        self._announced = -1  # the generation whose on_connected the loop has delivered
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{cfg.client_id}",
                                        daemon=True)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _make_client(self) -> paho.Client:
        cfg = self.cfg
        v5 = cfg.mqtt_version == "5"
        client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            clean_session=None if v5 else cfg.clean_start,
        )
        client.max_inflight_messages_set(64)
        username = cfg.username or self._addr.username
        if username:
            client.username_pw_set(username, cfg.password or self._addr.password)
        if self._addr.tls:
            client.tls_set(ca_certs=cfg.tls_ca, certfile=cfg.tls_cert, keyfile=cfg.tls_key,
                           cert_reqs=ssl.CERT_REQUIRED)
        if cfg.will:
            client.will_set(cfg.will[0], cfg.will[1], qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        return client

    def start(self) -> None:
        self._thread.start()

    def set_urgent(self, urgent: bool) -> None:
        """Records are (or are no longer) pending: a long idle reconnect wait is cut short."""
        if urgent and not self._urgent:
            self._nudge.set()
        self._urgent = urgent

    async def stop(self) -> None:
        """Publish the will's payload, disconnect cleanly, join the network thread."""
        if self.cfg.will and self._connected.is_set():
            await self._publish_offline(*self.cfg.will)
        self._stop.set()
        self._nudge.set()
        if self._connected.is_set():
            self._client.disconnect()
        await asyncio.to_thread(self._thread.join)

    async def _publish_offline(self, topic: str, payload: bytes) -> None:
        # A clean disconnect discards the last will: without this the retained status would
        # stay `online` after the gateway stopped.
        info = self._client.publish(topic, payload, qos=1, retain=True)
        try:
            await asyncio.to_thread(info.wait_for_publish, OFFLINE_PUBACK_WAIT_S)
        except (RuntimeError, ValueError) as exc:  # paho: not connected / not queued
            LOGGER.warning("mqtt_offline_not_published", extra={"reason": str(exc)})
            return
        if not info.is_published():
            LOGGER.warning("mqtt_offline_not_published", extra={"reason": "no puback"})

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                announced_only: bool = False) -> int:
        """Queue a publish; returns its message id. UplinkError when paho refuses it, and with
        `announced_only` unless the connection last announced by on_connected is still up."""
        with self._swap:
            # A loop lagging behind the network thread would otherwise hand a publish to the
            # next connection's fresh client, which paho sends by itself at CONNACK, before
            # the consumer knows of that connection (and resends the same batch there).
            if announced_only and (self._announced != self._generation
                                   or not self._connected.is_set()):
                raise UplinkError(f"publish to {topic}: the announced connection is gone")
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise UplinkError(f"publish to {topic}: paho refused it ({info.rc.name})")
        return info.mid

    # --- network thread ---

    def _connect_properties(self) -> Properties | None:
        if self.cfg.mqtt_version != "5":
            return None
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0 if self.cfg.clean_start else self.cfg.session_expiry_s
        return props

    def _open(self, first: bool) -> None:
        cfg = self.cfg
        if not first:
            # A fresh paho client per connection: paho would otherwise re-send its unacked
            # publishes on reconnect by itself, and a batch the broker refuses would loop.
            # The uplink re-sends unacked batches itself; the broker keeps our session.
            client = self._make_client()
            with self._swap:
                self._client, self._generation = client, self._generation + 1
        if cfg.mqtt_version == "5":
            self._client.connect(self._addr.host, self._addr.port, cfg.keepalive_s,
                                 clean_start=cfg.clean_start,
                                 properties=self._connect_properties())
        else:
            self._client.connect(self._addr.host, self._addr.port, cfg.keepalive_s)

    def _run(self) -> None:
        attempt, first = 0, True
        while not self._stop.is_set():
            try:
                self._open(first)
                first = False
                while not self._stop.is_set():
                    if self._client.loop(LOOP_TICK_S) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                        break
                    if self._connected.is_set():
                        attempt = 0
            except (OSError, ssl.SSLError, ValueError) as exc:
                self._hand_off(self._handlers.on_disconnected, f"connect failed: {exc}")
            if self._connected.is_set():
                self._connected.clear()
                self._hand_off(self._handlers.on_disconnected, "connection lost")
            self._wait_to_reconnect(attempt)
            attempt += 1

    def _wait_to_reconnect(self, attempt: int) -> None:
        self._nudge.clear()  # before reading _urgent: a nudge after this point is not lost
        delay = self.backoff.delay(attempt, self._urgent)
        if not self._stop.is_set():
            LOGGER.debug("mqtt_reconnect_wait", extra={"delay_s": round(delay, 2)})
        if self._nudge.wait(delay) and not self._stop.is_set():
            # records became pending during an idle wait: probe on the pending schedule
            self._stop.wait(self.backoff.delay(0, True))

    def _hand_off(self, func: Callable[..., None], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(func, *args)
        except RuntimeError:  # the asyncio loop is closed: we are shutting down
            self._stop.set()

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            LOGGER.warning("mqtt_connect_refused", extra={"reason": str(reason)})
            return
        self._connected.set()
        if self.cfg.birth:
            client.publish(self.cfg.birth[0], self.cfg.birth[1], qos=1, retain=True)
        self._max_packet = getattr(properties, "MaximumPacketSize", None) if properties else None
        # "Connected" is reported once the broker confirmed the subscriptions: a message sent
        # to us after that point is never missed.
        mids = (client.subscribe(t, qos=1)[1] for t in self.cfg.subscriptions)
        self._pending_subs = {mid for mid in mids if mid is not None}
        if not self._pending_subs:
            self._hand_off(self._announce, self._generation, self._max_packet)

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, reasons: Any,
                      properties: Any) -> None:
        if any(getattr(r, "is_failure", False) for r in reasons):
            LOGGER.warning("mqtt_subscribe_refused", extra={"reasons": [str(r) for r in reasons]})
        self._pending_subs.discard(mid)
        if not self._pending_subs:
            self._hand_off(self._announce, self._generation, self._max_packet)

    def _announce(self, generation: int, max_packet: int | None) -> None:
        """On the loop: the consumer learns of connection `generation`."""
        self._announced = generation
        self._handlers.on_connected(max_packet)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self._connected.clear()
        if not self._stop.is_set():  # our own stop() is not news
            self._hand_off(self._handlers.on_disconnected, str(reason))

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        self._hand_off(self._handlers.on_message, msg.topic, bytes(msg.payload))

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any,
                    properties: Any) -> None:
        self._hand_off(self._handlers.on_published, mid, int(getattr(reason, "value", 0)))
