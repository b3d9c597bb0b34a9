"""Uplink fault tests against a real Mosquitto and a separate gateway process.

After every fault the head-end must hold each record exactly once, the chain must have no gap
and no fork, and the gateway's outbox must be empty.
"""

import asyncio
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hil.uplink_support.process import GatewayFiles, start_gateway
from uplink.headend.server import HeadEnd
from uplink.headend.store import HeadendStore
from uplink.keys import create_private_key, load_public_key, public_pem
from uplink.localbroker import MOSQUITTO, Mosquitto

pytestmark = pytest.mark.broker
GW = "gw-hil"
# Bounds for a whole recovery on a loaded 2-core CI machine (never asserted as speed).
RECOVERY_TIMEOUT_S = 90.0
EXIT_TIMEOUT_S = 20.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    if MOSQUITTO is None:
        pytest.skip("mosquitto binary not installed (make debian-deps installs it)")
    mosq = Mosquitto(tmp_path).start()
    yield mosq
    mosq.stop()


@pytest.fixture
def files(tmp_path: Path) -> GatewayFiles:
    create_private_key(tmp_path / "gw.pem")
    server = create_private_key(tmp_path / "server.pem")
    (tmp_path / "server_pub.pem").write_text(public_pem(server))
    return GatewayFiles(tmp_path / "gateway.db", tmp_path / "gw.pem",
                        tmp_path / "server_pub.pem", GW)


@pytest.fixture
async def headend(broker: Mosquitto, files: GatewayFiles,
                  tmp_path: Path) -> AsyncIterator[HeadEnd]:
    from uplink.keys import load_private_key
    (tmp_path / "gw_pub.pem").write_text(public_pem(load_private_key(files.key)))
    store = HeadendStore(tmp_path / "headend.db")
    he = HeadEnd(store, {GW: load_public_key(tmp_path / "gw_pub.pem")},
                 load_private_key(files.key.with_name("server.pem")), broker_url=broker.url)
    task = asyncio.create_task(he.run())
    await he.wait_connected()
    yield he
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    store.close()


def outbox_rows(db: Path) -> tuple[int, int]:
    """(rows still in the outbox, highest record id ever issued)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        left = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
    return int(left), int(row[0]) if row else 0


async def wait_exit(proc: "subprocess.Popen[str]") -> int:
    async with asyncio.timeout(EXIT_TIMEOUT_S):
        while proc.poll() is None:
            await asyncio.sleep(0.05)
    return int(proc.returncode)


async def drain_and_stop(proc: "subprocess.Popen[str]", files: GatewayFiles) -> None:
    """Wait until the process added all its readings and its outbox is empty; SIGTERM it."""
    assert proc.stdout is not None
    async with asyncio.timeout(RECOVERY_TIMEOUT_S):
        while True:
            line = await asyncio.to_thread(proc.stdout.readline)
            assert line, "gateway process exited early"
            if line.strip() == "done adding":
                break
        while outbox_rows(files.db)[0]:
            await asyncio.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert await wait_exit(proc) == 0


def assert_delivered_exactly_once(he: HeadEnd, files: GatewayFiles) -> None:
    left, last_id = outbox_rows(files.db)
    assert left == 0
    assert last_id > 0
    assert he.store.record_ids(GW) == list(range(1, last_id + 1))
    kinds = {a[2] for a in he.store.anomalies(GW)}
    assert not kinds & {"fork", "duplicate_record"}, he.store.anomalies(GW)
    with sqlite3.connect(f"file:{files.db}?mode=ro", uri=True) as conn:
        head = conn.execute("SELECT max(seq) FROM uplink_batches").fetchone()[0]
    assert he.store.contiguous(GW) == head  # no gap: every seq up to the head is held


@pytest.mark.parametrize("crash_at", ["build:3", "send:4"])
async def test_gateway_sigkilled_while_building_or_sending(
        headend: HeadEnd, broker: Mosquitto, files: GatewayFiles, crash_at: str) -> None:
    first = start_gateway(files, broker.url, crash_at=crash_at, ticks=200)
    assert await wait_exit(first) == -signal.SIGKILL
    second = start_gateway(files, broker.url, ticks=10, start_ms=1_800_000_000_000)
    await drain_and_stop(second, files)
    assert_delivered_exactly_once(headend, files)


async def test_gateway_sigkilled_from_outside_mid_stream(
        headend: HeadEnd, broker: Mosquitto, files: GatewayFiles) -> None:
    first = start_gateway(files, broker.url, ticks=500, tick_s=0.01)
    assert first.stdout is not None
    for _ in range(60):  # let it build and send for a while
        await asyncio.to_thread(first.stdout.readline)
    first.send_signal(signal.SIGKILL)
    assert await wait_exit(first) == -signal.SIGKILL
    second = start_gateway(files, broker.url, ticks=5, start_ms=1_800_000_000_000)
    await drain_and_stop(second, files)
    assert_delivered_exactly_once(headend, files)


async def test_link_down_for_a_simulated_hour(
        headend: HeadEnd, broker: Mosquitto, files: GatewayFiles) -> None:
    # 150 ticks of one simulated minute each; the broker is down for 70 of them.
    proc = start_gateway(files, broker.url, ticks=150, tick_s=0.02, meters=20)
    assert proc.stdout is not None

    async def read_ticks(n: int) -> int:
        last_ms = 0
        for _ in range(n):
            line = await asyncio.to_thread(proc.stdout.readline)  # type: ignore[union-attr]
            last_ms = int(line.split()[2])
        return last_ms

    await read_ticks(20)
    broker.stop()
    down_from = await read_ticks(1)
    down_to = await read_ticks(69)
    assert down_to - down_from >= 3600_000 - 60_000  # an hour of meter readings piled up
    broker.start()  # 60 ticks still to come: meters keep being read while it drains
    await drain_and_stop(proc, files)
    assert_delivered_exactly_once(headend, files)
