"""The chunked, resumable download (gateway/remote/update_fetch.py) against the head-end's
real chunk reader (uplink/headend/release_serve.py) on a real releases directory, the link
cut by the transport in between; and the same through a real Mosquitto."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from core.clock import FakeClock, SystemClock
from gateway.remote.update_fetch import Chunk, Fetcher, FetchLimits
from gateway.remote.update_mqtt import MqttChunks
from tests.gateway.remote.wheels import make_bundle, make_wheel
from uplink.errors import BadMessage
from uplink.headend.release_serve import BundleServer, read_chunk
from uplink.mqtt import LinkConfig
from uplink.release import MANIFEST_FILE, BundleError, build_manifest, sign_manifest
from uplink.release_wire import ChunkRequest, decode_answer, decode_request

RELEASE = Ed25519PrivateKey.generate()
SMALL = FetchLimits(chunk_bytes=256, pause_s=0.0)


class Link:
    """The head-end's reader behind a link that can be cut after `cut_after` answers."""

    def __init__(self, releases: Path, cut_after: int | None = None) -> None:
        self.releases, self.cut_after = releases, cut_after
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, version: str, file: str, offset: int, length: int) -> Chunk:
        if self.cut_after is not None and len(self.asked) >= self.cut_after:
            raise ConnectionError("link lost")
        self.asked.append((file, offset))
        answer = read_chunk(self.releases, ChunkRequest(version, file, offset, length))
        if answer.size < 0:
            raise BundleError("no_such_release", file)
        return Chunk(answer.offset, answer.data, answer.size)


def _release(tmp_path: Path, version: str = "0.2.0", key: Ed25519PrivateKey = RELEASE,
             min_version: str = "0.1.0") -> Path:
    releases = tmp_path / "releases"
    make_bundle(releases / version, version, key, min_version=min_version)
    make_wheel(releases / version, "5.6.5", dist="cbor2")  # a second wheel, then re-signed
    manifest = build_manifest(releases / version, version, min_version, now_ms=1)
    (releases / version / MANIFEST_FILE).write_bytes(sign_manifest(manifest, key))
    return releases


def _fetcher(tmp_path: Path, link: Link, limits: FetchLimits = SMALL,
             version: str = "0.2.0") -> Fetcher:
    return Fetcher(tmp_path / "data" / "update_download" / version, version, link, FakeClock(),
                   limits)


async def test_the_whole_bundle_arrives_in_bounded_chunks(tmp_path: Path) -> None:
    releases = _release(tmp_path)
    link = Link(releases)
    manifest = await _fetcher(tmp_path, link).bundle(RELEASE.public_key(), "0.1.0", None)
    got = tmp_path / "data" / "update_download" / "0.2.0"
    for wheel in manifest.wheels:
        assert (got / wheel.file).read_bytes() == (releases / "0.2.0" / wheel.file).read_bytes()
    assert len(link.asked) > len(manifest.wheels) + 1  # more than one chunk per file


async def test_a_resumed_download_asks_only_for_what_it_lacks(tmp_path: Path) -> None:
    releases = _release(tmp_path)
    first = Link(releases, cut_after=5)
    with pytest.raises(ConnectionError):
        await _fetcher(tmp_path, first).bundle(RELEASE.public_key(), "0.1.0", None)
    second = Link(releases)
    manifest = await _fetcher(tmp_path, second).bundle(RELEASE.public_key(), "0.1.0", None)
    assert not set(first.asked) & set(second.asked)  # nothing fetched twice
    assert sum(1 for _ in manifest.wheels) == 2
    assert not list((tmp_path / "data" / "update_download" / "0.2.0").glob("*.part"))


async def test_another_release_key_is_bad_signature_and_nothing_else_fetched(
        tmp_path: Path) -> None:
    link = Link(_release(tmp_path, key=Ed25519PrivateKey.generate()))
    with pytest.raises(BundleError) as err:
        await _fetcher(tmp_path, link).bundle(RELEASE.public_key(), "0.1.0", None)
    assert err.value.reason == "bad_signature"
    assert {f for f, _ in link.asked} == {MANIFEST_FILE}
    assert not (tmp_path / "data" / "update_download" / "0.2.0" / MANIFEST_FILE).exists()


async def test_a_changed_wheel_at_the_head_end_is_wrong_hash(tmp_path: Path) -> None:
    releases = _release(tmp_path)
    wheel = next((releases / "0.2.0").glob("meter_gateway-*.whl"))
    data = bytearray(wheel.read_bytes())
    data[100] ^= 0xFF
    wheel.write_bytes(bytes(data))
    with pytest.raises(BundleError) as err:
        await _fetcher(tmp_path, Link(releases)).bundle(RELEASE.public_key(), "0.1.0", None)
    assert err.value.reason == "wrong_hash"
    assert not list((tmp_path / "data").rglob("meter_gateway-*"))  # the bad part is gone


async def test_a_short_wheel_at_the_head_end_is_truncated(tmp_path: Path) -> None:
    releases = _release(tmp_path)
    wheel = next((releases / "0.2.0").glob("cbor2-*.whl"))
    wheel.write_bytes(wheel.read_bytes()[:-7])
    with pytest.raises(BundleError) as err:
        await _fetcher(tmp_path, Link(releases)).bundle(RELEASE.public_key(), "0.1.0", None)
    assert err.value.reason == "truncated"


async def test_a_bundle_above_the_limit_is_too_large(tmp_path: Path) -> None:
    limits = FetchLimits(chunk_bytes=256, pause_s=0.0, max_bundle_bytes=100)
    link = Link(_release(tmp_path))
    with pytest.raises(BundleError) as err:
        await _fetcher(tmp_path, link, limits).bundle(RELEASE.public_key(), "0.1.0", None)
    assert err.value.reason == "too_large"
    assert {f for f, _ in link.asked} == {MANIFEST_FILE}


async def test_a_downgrade_below_the_running_minimum_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as err:
        await _fetcher(tmp_path, Link(_release(tmp_path))).bundle(
            RELEASE.public_key(), "0.3.0", "0.3.0")
    assert err.value.reason == "downgrade_refused"


async def test_the_pause_between_chunks_bounds_the_rate(tmp_path: Path) -> None:
    clock = FakeClock()
    link = Link(_release(tmp_path))
    fetcher = Fetcher(tmp_path / "dl", "0.2.0", link, clock,
                      FetchLimits(chunk_bytes=256, pause_s=0.5))
    task = asyncio.ensure_future(fetcher.bundle(RELEASE.public_key(), "0.1.0", None))
    while not task.done():
        await clock.run_for(0.5)
    task.result()
    assert clock.monotonic() >= 0.5 * (len(link.asked) - 1)
    assert fetcher.received_bytes / clock.monotonic() <= 256 / 0.5 * 1.01


@given(st.binary(max_size=200))
def test_any_bytes_are_a_request_or_bad_message(data: bytes) -> None:
    for decode in (decode_request, decode_answer):
        try:
            decoded = decode(data)
        except BadMessage as exc:
            assert str(exc)
        else:
            assert decoded.offset >= 0


def test_the_reader_serves_no_path_outside_a_release(tmp_path: Path) -> None:
    releases = _release(tmp_path)
    (tmp_path / "secret").write_text("x")
    for version, file in (("..", "secret"), ("0.2.0", "../../secret"), ("0.2.0", ".hidden")):
        assert read_chunk(releases, ChunkRequest(version, file, 0, 10)).size == -1


async def test_through_mosquitto_with_the_broker_restarted_mid_download(
        tmp_path: Path, broker) -> None:
    releases = _release(tmp_path)
    server = BundleServer(releases, broker.url, "mtr")
    serving = asyncio.ensure_future(server.run())
    await asyncio.wait_for(server.ready.wait(), 30)
    cfg = LinkConfig(url=broker.url, client_id="gw1", backoff_min_s=0.1, backoff_max_s=0.5)
    target = tmp_path / "dl"
    try:
        async with MqttChunks(cfg, "mtr", "gw1", answer_timeout_s=2.0) as chunks:
            cut = Cutting(chunks, broker, after=4)
            fetcher = Fetcher(target, "0.2.0", cut, SystemClock(), SMALL)
            with pytest.raises((TimeoutError, ConnectionError)):
                await fetcher.bundle(RELEASE.public_key(), "0.1.0", None)
        kept = sum(p.stat().st_size for p in target.iterdir())
        assert kept > 0
        broker.start()
        await asyncio.wait_for(server.ready.wait(), 30)
        async with MqttChunks(cfg, "mtr", "gw1", answer_timeout_s=10.0) as chunks:
            fetcher = Fetcher(target, "0.2.0", chunks, SystemClock(), SMALL)
            manifest = await fetcher.bundle(RELEASE.public_key(), "0.1.0", None)
        total = sum(w.size for w in manifest.wheels) + (target / MANIFEST_FILE).stat().st_size
        assert fetcher.received_bytes == total - kept  # resumed, not started again
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
    shutil.rmtree(target)


class Cutting:
    """Stops the broker after `after` chunks (the link lost mid-download)."""

    def __init__(self, inner: MqttChunks, broker, after: int) -> None:
        self.inner, self.broker, self.left = inner, broker, after

    async def __call__(self, version: str, file: str, offset: int, length: int) -> Chunk:
        if self.left == 0:
            self.broker.stop()
            self.left = -1
        self.left -= 1 if self.left > 0 else 0
        return await self.inner(version, file, offset, length)
