"""Whole system: the head-end opens and closes a DLMS meter's own breaker through the real
`gateway run` (signed `dlms.disconnect` / `dlms.reconnect` commands over a real Mosquitto), the
simulated meter on a pty with HLS-GMAC; the command results carry the state the meter reports."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from drivers.dlms.keys import DlmsKeyFile
from drivers.dlms.security import Keys
from drivers.dlms.server import ServerSettings
from drivers.dlms.simhost import SimHost
from tests.harness.eventually import eventually_async
from tests.harness.gateway_process import GatewayProcess
from uplink.headend.server import HeadEnd
from uplink.headend.store import HeadendStore
from uplink.keys import create_private_key, public_pem
from uplink.localbroker import Mosquitto

pytestmark = pytest.mark.broker
GW = "gw-dlms"
STEP_DEADLINE_S = 90.0  # waits for states, never asserts on speed
KEYS = Keys(bytes.fromhex("000102030405060708090A0B0C0D0E0F"),
            bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"))


@pytest.fixture
async def headend(broker: Mosquitto, tmp_path: Path) -> AsyncIterator[HeadEnd]:
    gw_key = create_private_key(tmp_path / "gateway_ed25519.pem")
    server_key = create_private_key(tmp_path / "headend_ed25519.pem")
    (tmp_path / "headend_public.pem").write_text(public_pem(server_key))
    he = HeadEnd(HeadendStore(tmp_path / "headend.db"), {GW: gw_key.public_key()}, server_key,
                 broker_url=broker.url)
    task = asyncio.create_task(he.run())
    await he.wait_connected()
    yield he
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    he.store.close()


def _config(tmp_path: Path, port: str, broker: Mosquitto) -> Path:
    config = tmp_path / "site.toml"
    config.write_text(textwrap.dedent(f"""
        gateway_id = "{GW}"
        timezone = "UTC"

        [storage]
        path = "{tmp_path / 'gw.db'}"
        commit_interval_ms = 200

        [uplink]
        broker_url = "{broker.url}"
        key_file = "gateway_ed25519.pem"
        server_public_key = "headend_public.pem"
        batch_interval_s = 0.3
        ack_timeout_s = 5
        backoff_min_s = 0.2
        backoff_max_s = 2

        [[bus]]
        id = "line"
        port = "{port}"
        baudrate = 9600

        [[meter]]
        id = "flat-7"
        bus = "line"
        protocol = "dlms"
        client = 1
        authentication = "hls_gmac"
        poll_interval_s = 1
        timeout_ms = 2000
    """))
    return config


def _results(he: HeadEnd) -> list[dict[str, Any]]:
    return [r["body"] for r in he.store.export(GW) if r["kind"] == "cmd_result"]


async def _wait(check: Callable[[], bool], what: str) -> None:
    await eventually_async(check, STEP_DEADLINE_S, what)


async def test_the_head_end_switches_the_meters_breaker(tmp_path: Path, broker: Mosquitto,
                                                         headend: HeadEnd) -> None:
    keys = DlmsKeyFile(tmp_path / "dlms-keys")
    keys.add("flat-7", "encryption", KEYS.encryption.hex())
    keys.add("flat-7", "authentication", KEYS.authentication.hex())
    with SimHost("hdlc", ServerSettings(keys=KEYS)) as host:
        config = _config(tmp_path, host.port_path, broker)
        with GatewayProcess(config, tmp_path / "gateway.log") as gateway:
            await _wait(lambda: any(r["kind"] == "reading" for r in headend.store.export(GW)),
                        "a reading at the head-end")
            await headend.send_command(GW, "dlms.disconnect", {"meter": "flat-7"})
            await _wait(lambda: len(_results(headend)) >= 1, "the disconnect's result")
            assert host.call(lambda: host.objects.output_state) is False
            await headend.send_command(GW, "dlms.reconnect", {"meter": "flat-7"})
            await _wait(lambda: len(_results(headend)) >= 2, "the reconnect's result")
            await headend.send_command(GW, "dlms.breaker", {"meter": "nobody"})
            await _wait(lambda: len(_results(headend)) >= 3, "the refusal")
            assert gateway.stop() == 0, gateway.log_tail()
        actions = host.call(lambda: list(host.objects.actions))
    assert actions == ["disconnect", "reconnect"]
    results = _results(headend)
    text = [str(r) for r in results]
    assert "disconnected" in text[0] and "'output_state': False" in text[0], text
    assert "connected" in text[1] and "'output_state': True" in text[1], text
    assert "unknown_meter" in text[2], text
