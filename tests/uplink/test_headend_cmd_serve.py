"""`gateway-headend cmd` beside a real `gateway-headend serve` process, over real Mosquitto.

The gateway's batches (several in flight, while `cmd` waits) must all reach the serving
process: `cmd` takes none of them, so serve records no gap, and `cmd` prints the result.
"""

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage.store import Store
from tests.harness.uplink_site import GW, fast_settings
from uplink.commands import CommandRegistry
from uplink.headend import cli
from uplink.headend.store import HeadendStore
from uplink.keys import HEADEND_KEY_FILE, create_private_key, load_private_key, public_pem
from uplink.localbroker import Mosquitto
from uplink.service import Uplink

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def serve(broker: Mosquitto, gw_key: Ed25519PrivateKey,
          tmp_path: Path) -> Iterator["subprocess.Popen[bytes]"]:
    create_private_key(tmp_path / HEADEND_KEY_FILE)
    (tmp_path / "gw_pub.pem").write_text(public_pem(gw_key))
    proc = subprocess.Popen(
        [sys.executable, "-m", "uplink.headend.cli", "serve", "--broker", broker.url,
         "--db", str(tmp_path / "headend.db"), "--state", str(tmp_path),
         "--enrol", f"{GW}={tmp_path / 'gw_pub.pem'}"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield proc
    proc.terminate()
    proc.wait()


@pytest.fixture
async def gateway(broker: Mosquitto, store: Store, gw_key: Ed25519PrivateKey, tmp_path: Path,
                  serve: "subprocess.Popen[bytes]") -> AsyncIterator[tuple[Uplink,
                                                                           CommandRegistry]]:
    server_key = load_private_key(tmp_path / HEADEND_KEY_FILE)
    registry = CommandRegistry()
    # small uncompressed batches: several in flight at once
    uplink = Uplink(store, fast_settings(broker.url, max_batch_bytes=1024, compress=False),
                    gw_key, server_key.public_key(), registry)
    task = asyncio.create_task(uplink.run())
    store.add_event("warm_up", meter_id=None, data={}, ts_ms=1_700_000_000_000)
    uplink.wake()
    assert await uplink.flush(120)  # acked: serve is up and subscribed
    yield uplink, registry
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_cmd_beside_a_serving_headend_process(
        gateway: tuple[Uplink, CommandRegistry], store: Store, broker: Mosquitto,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uplink, registry = gateway
    started, release = asyncio.Event(), asyncio.Event()

    async def hold(args: dict[str, Any], ctx: Any) -> dict[str, Any]:
        started.set()
        await release.wait()
        return {"held": True}

    registry.register("hold", hold)
    running = asyncio.create_task(asyncio.to_thread(cli.main, [
        "cmd", "--broker", broker.url, "--state", str(tmp_path),
        "--db", str(tmp_path / "headend.db"), "--gw", GW, "--op", "hold", "--id", "c-1"]))
    try:
        await started.wait()
        for i in range(12):
            store.add_event("probe", meter_id=None, data={"i": i, "pad": "x" * 700},
                            ts_ms=1_700_000_000_001 + i)
        uplink.wake()
        assert await uplink.flush(120)
    finally:
        release.set()
    assert await running == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["id"], result["ok"], result["r"]) == ("c-1", True, {"held": True})
    assert await uplink.flush(120)
    served = HeadendStore(tmp_path / "headend.db", create=False)
    try:
        assert served.anomalies() == []
        probes = [r["body"]["d"]["i"] for r in served.export(GW)
                  if r["kind"] == "event" and r["body"]["e"] == "probe"]
        assert probes == list(range(12))
    finally:
        served.close()
