"""The retained status topic: `online` while connected, `offline` after a clean stop."""

import asyncio
import threading
from pathlib import Path

import paho.mqtt.client as paho
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from storage.store import Store
from tests.harness.uplink_site import GW, Site
from uplink.localbroker import Mosquitto
from uplink.settings import topics

# A retained message reaches a new subscriber within milliseconds; this bounds a broken broker.
RETAINED_WAIT_S = 30.0


def retained_status(broker: Mosquitto) -> bytes:
    """What a fresh subscriber sees on the gateway's status topic (the retained message)."""
    got: list[bytes] = []
    arrived = threading.Event()

    def on_message(_client: paho.Client, _userdata: object, msg: paho.MQTTMessage) -> None:
        got.append(bytes(msg.payload))
        arrived.set()

    def on_connect(client: paho.Client, *_args: object) -> None:
        client.subscribe(topics("mtr", GW)["status"], qos=1)

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="status-reader")
    client.on_message = on_message
    client.on_connect = on_connect
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        assert arrived.wait(RETAINED_WAIT_S), "no retained status message"
    finally:
        client.loop_stop()
        client.disconnect()
    return got[0]


async def test_clean_stop_publishes_offline(broker: Mosquitto, store: Store,
                                            gw_key: Ed25519PrivateKey,
                                            server_key: Ed25519PrivateKey,
                                            tmp_path: Path) -> None:
    site = await Site(broker.url, store, gw_key, server_key, tmp_path / "he.db").start()
    try:
        assert await asyncio.to_thread(retained_status, broker) == b"online"
    finally:
        await site.stop()
    # A clean disconnect suppresses the last will: the gateway must say it itself.
    assert await asyncio.to_thread(retained_status, broker) == b"offline"
