"""The one broker fixture: a real Mosquitto on a free loopback port, for tests/ and hil/.

Registered for every test by the root conftest.py (`pytest_plugins`). A test that needs a
broker with its own configuration (ACLs, TLS, packet limits) makes one with
`uplink.localbroker.Mosquitto(directory, extra_conf=...)`, which this fixture uses too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from uplink.localbroker import FLEET_CONF, FLEET_OPEN_FILES, MOSQUITTO, Mosquitto


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A started broker (stop() and start() it to cut the link); stopped after the test."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto binary not installed (make debian-deps installs it)")
    workdir = tmp_path / "broker"
    workdir.mkdir(exist_ok=True)
    mosq = Mosquitto(workdir).start()
    yield mosq
    mosq.stop()


@pytest.fixture
def fleet_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker for a fleet's load test: one connection per simulated gateway (the open-files
    limit raised) and a queue per head-end worker deep enough for a burst from all of them
    (`uplink.localbroker.FLEET_CONF`)."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto binary not installed (make debian-deps installs it)")
    workdir = tmp_path / "fleet-broker"
    workdir.mkdir(exist_ok=True)
    mosq = Mosquitto(workdir, extra_conf=FLEET_CONF, open_files=FLEET_OPEN_FILES).start()
    yield mosq
    mosq.stop()
