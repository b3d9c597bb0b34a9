"""Fixtures: keys, a store, a running head-end and Uplink (the broker: tests/harness/broker.py)."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage.store import Store
from tests.harness.uplink_site import Site
from uplink.localbroker import Mosquitto


@pytest.fixture
def gw_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def server_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    st = Store.open(tmp_path / "gateway.db")
    yield st
    st.close()


@pytest.fixture
async def site(broker: Mosquitto, store: Store, gw_key: Ed25519PrivateKey,
               server_key: Ed25519PrivateKey, tmp_path: Path) -> AsyncIterator[Site]:
    running = await Site(broker.url, store, gw_key, server_key,
                         tmp_path / "headend.db").start()
    yield running
    await running.stop()
