"""Back-office operations on a PostgreSQL head-end, with a real gateway Uplink, a real
`serve` process and Mosquitto: enrolment from the database, `cmd` waiting for its result,
revocation refusing further batches, and the streaming export by gateway, meter and time."""

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
from uplink.headend.db import open_store
from uplink.headend.enrol import parse_public_pem
from uplink.headend.fleet import FleetSpec, build_fleet
from uplink.headend.verify import verify_batch
from uplink.keys import HEADEND_KEY_FILE, create_private_key, load_private_key, public_pem
from uplink.localbroker import Mosquitto
from uplink.service import Uplink

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def serve(broker: Mosquitto, pg_url: str, tmp_path: Path) -> Iterator[Ed25519PrivateKey]:
    gw_key = Ed25519PrivateKey.generate()
    (tmp_path / "gw.pem").write_text(public_pem(gw_key))
    assert cli.main(["gateways", "add", GW, "--key", str(tmp_path / "gw.pem"),
                     "--db", pg_url]) == 0  # enrolled in the database, no --enrol
    create_private_key(tmp_path / HEADEND_KEY_FILE)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uplink.headend.cli", "serve", "--broker", broker.url,
         "--db", pg_url, "--state", str(tmp_path), "--key-refresh", "0"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield gw_key
    proc.terminate()
    proc.wait()


@pytest.fixture
async def uplink(broker: Mosquitto, serve: Ed25519PrivateKey,
                 tmp_path: Path) -> AsyncIterator[tuple[Uplink, Store, CommandRegistry]]:
    store = Store.open(tmp_path / "gateway.db")
    registry = CommandRegistry()
    server_key = load_private_key(tmp_path / HEADEND_KEY_FILE)
    up = Uplink(store, fast_settings(broker.url), serve, server_key.public_key(), registry)
    task = asyncio.create_task(up.run())
    yield up, store, registry
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    store.close()


def events(pg_url: str) -> list[str]:
    store: Any = open_store(pg_url, create=False)
    try:
        return [r[0] for r in store.conn.execute(
            "SELECT event FROM events WHERE gw = %s ORDER BY id", (GW,))]
    finally:
        store.close()


async def test_enrol_cmd_and_revoke(uplink: tuple[Uplink, Store, CommandRegistry], pg_url: str,
                                    broker: Mosquitto, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    up, store, _registry = uplink
    store.add_event("first", meter_id=None, data={}, ts_ms=1_700_000_000_000)
    up.wake()
    assert await up.flush(60)
    assert events(pg_url) == ["first"]
    status: Any = open_store(pg_url, create=False)
    try:  # the gateway's retained birth message, recorded by the worker for the fleet page
        assert status.conn.execute("SELECT status FROM gateway_status WHERE gw = %s",
                                   (GW,)).fetchone() == ("online",)
    finally:
        status.close()
    code = await asyncio.to_thread(cli.main, [
        "cmd", "--broker", broker.url, "--state", str(tmp_path), "--db", pg_url, "--gw", GW,
        "--op", "ping", "--id", "p-1", "--timeout", "60"])
    out = capsys.readouterr()
    assert code == 0, out.err
    result = json.loads(out.out)
    assert (result["id"], result["ok"]) == ("p-1", True)
    assert result["r"]["pong"] is True

    assert cli.main(["gateways", "revoke", GW, "--db", pg_url]) == 0
    # --key-refresh 0: the worker looks the key up at every batch, so the revoke holds now
    store.add_event("after_revoke", meter_id=None, data={}, ts_ms=1_700_000_000_001)
    up.wake()
    assert not await up.flush(3)  # refused: never acked
    assert "after_revoke" not in events(pg_url)
    assert cli.main(["gateways", "list", "--db", pg_url]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(x["gw"], x["revoked_ms"] is not None) for x in listed] == [(GW, True)]


def test_export_by_gateway_meter_and_time(pg_url: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    store = open_store(pg_url)
    try:
        for sim in build_fleet(FleetSpec(2, 4, 10), processes=1):
            keys = {sim.gw: parse_public_pem(sim.public_pem, sim.gw)}
            for raw in sim.batches:
                store.ingest(verify_batch(raw, keys))
    finally:
        store.close()
    start = FleetSpec(1, 1, 1).start_ms
    assert cli.main(["export", "--db", pg_url, "--gw", "sim-00001", "--meter", "m0002",
                     "--kind", "readings", "--since", str(start + 120_000),
                     "--until", "2026-01-01T00:05:00", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "gw,meter,id,t_ms,quantity,value"
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == 3 * 15  # minutes 2, 3, 4 of one meter, 15 values each
    assert {(r[0], r[1]) for r in rows} == {("sim-00001", "m0002")}
    assert all(start + 120_000 <= int(r[3]) < start + 300_000 for r in rows)
    assert cli.main(["export", "--db", pg_url, "--gw", "sim-00000"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 40 and records[0]["body"]["values"]["voltage_l1"].count(".") == 1
