"""Whole system, software update: the real `gateway run` (simulated Modbus meter over a pty)
started from `<prefix>/current/bin/python`, a real Mosquitto, the real `gateway-headend serve`,
`release publish`, `release serve` and `update`. The versions are stand-in wheels made on the
spot whose `.pth` puts this checkout's dependencies on the path, so each version's venv runs the
real gateway code offline; a "crashing" version's `.pth` exits 3 at every start of its python.

Bundles with a bad signature, a wrong hash and a truncated wheel are refused with their reason,
the same process still serving on the old version; a good one is fetched, installed, switched
to (the same PID, exec'd into the new venv) and confirmed healthy; one that crashes at start is
rolled back by the start counter (the test restarts it as systemd's Restart=always would, the
guard first as the unit's ExecStartPre)."""

from __future__ import annotations

import json
import site
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drivers.modbus.site import RunningSim, start_simulators
from gateway.remote.update_ab import install_version, linked_version, relink
from gateway.remote.update_trial import read_update_trial
from hil.test_remote_config import GW, SITE, headend, more_readings, started, write_config
from hil.test_remote_config import serve as serve  # the fixture, used by name
from tests.gateway.remote.wheels import make_bundle
from tests.harness.eventually import eventually
from tests.harness.gateway_process import GatewayProcess, stored_counts
from uplink.keys import create_private_key, public_pem
from uplink.localbroker import Mosquitto
from uplink.release import MANIFEST_FILE, verify_manifest

pytestmark = pytest.mark.broker
REPO = Path(__file__).resolve().parents[1]
DEADLINE_S = 180.0  # bounds a broken wait, never a speed requirement
DEPS = site.getsitepackages()[0]  # this checkout's venv: cbor2, paho, cryptography, ...


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RunningSim]:
    running = start_simulators(SITE, tmp_path / "sim")
    yield running
    running.stop()


class VersionedGateway(GatewayProcess):
    """`gateway run` as the unit would start it: <prefix>/current/bin/python."""

    def __init__(self, config: Path, log: Path, prefix: Path) -> None:
        super().__init__(config, log)
        self.prefix = prefix

    def command(self) -> list[str]:
        return [str(self.prefix / "current" / "bin" / "python"), "-m", "gateway.cli", "run",
                "--config", str(self.config)]


def release_serve(tmp_path: Path, broker: Mosquitto, releases: Path) -> subprocess.Popen[bytes]:
    with (tmp_path / "release-serve.log").open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "uplink.headend.cli", "release", "serve",
                                 str(releases), "--broker", broker.url], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=log)


@pytest.fixture
def release(tmp_path: Path, broker: Mosquitto) -> Iterator[dict[str, Any]]:
    """The release key, 0.1.0 installed and current, `release serve` on tmp/releases."""
    key_file = tmp_path / "release.pem"
    key = create_private_key(key_file)
    (tmp_path / "release_public.pem").write_text(public_pem(key))
    prefix = tmp_path / "opt"
    prefix.mkdir()
    first = make_bundle(tmp_path / "installed" / "0.1.0", "0.1.0", key, pth=DEPS)
    install_version(prefix, first, verify_manifest((first / MANIFEST_FILE).read_bytes(),
                                                   key.public_key()))
    relink(prefix, "current", "0.1.0")
    releases = tmp_path / "releases"
    releases.mkdir()
    rel = {"key": key, "key_file": key_file, "prefix": prefix, "releases": releases,
           "proc": release_serve(tmp_path, broker, releases)}
    yield rel
    rel["proc"].terminate()
    rel["proc"].wait(20)


def publish(tmp_path: Path, rel: dict[str, Any], version: str, *, key_file: Path | None = None,
            pth: str = DEPS, padding: int = 0) -> Path:
    directory = rel["releases"] / version
    make_bundle(directory, version, Ed25519PrivateKey.generate(), pth=pth, padding=padding)
    (directory / MANIFEST_FILE).unlink()
    done = subprocess.run([sys.executable, "-m", "uplink.headend.cli", "release", "publish",
                           str(directory), "--key", str(key_file or rel["key_file"]),
                           "--min-version", "0.1.0"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return directory


def config_with_updates(sim: RunningSim, tmp_path: Path, broker: Mosquitto,
                        rel: dict[str, Any]) -> Path:
    config = write_config(sim, tmp_path, broker)
    config.write_text(config.read_text().replace(
        "[remote]\n", f'[remote]\nupdate_prefix = "{rel["prefix"]}"\n'
                      f'release_key = "{tmp_path / "release_public.pem"}"\n'
                      "update_max_starts = 2\nupdate_chunk_bytes = 2048\n"
                      "update_pause_ms = 0\nupdate_retry_s = 3\n"))
    return config


def update_event(tmp_path: Path, version: str, kinds: tuple[str, ...]) -> dict[str, Any] | None:
    with sqlite3.connect(f"file:{tmp_path / 'headend.db'}?mode=ro", uri=True,
                         timeout=5) as conn:
        rows = conn.execute("SELECT body FROM records WHERE gw = ? AND kind = 'event' "
                            "ORDER BY rowid", (GW,)).fetchall()
    for (body,) in rows:
        event = json.loads(body)
        if event.get("e") in kinds and (event.get("d") or {}).get("version") == version:
            return event
    return None


def offer(tmp_path: Path, broker: Mosquitto, version: str,
          wait: bool = False) -> list[dict[str, Any]]:
    code, lines, err = headend(tmp_path, broker, "update", GW, version, "--broker", broker.url,
                               "--state", str(tmp_path / "headend"),
                               *(() if wait else ("--no-wait",)))
    assert lines and lines[0]["r"]["accepted"], (code, err, lines)
    assert code == (0 if not wait or lines[-1]["event"] == "update_applied" else 1), (code, err)
    return lines


def test_bad_bundles_are_refused_and_a_good_one_is_applied(
        sim: RunningSim, broker: Mosquitto, serve: Path, release: dict[str, Any],
        tmp_path: Path) -> None:
    config = config_with_updates(sim, tmp_path, broker, release)
    other = tmp_path / "other.pem"
    create_private_key(other)
    publish(tmp_path, release, "0.2.0", key_file=other)  # not the release key
    wrong = next(publish(tmp_path, release, "0.2.1").glob("meter_gateway-*.whl"))
    data = bytearray(wrong.read_bytes())
    data[50] ^= 0xFF
    wrong.write_bytes(bytes(data))
    short = next(publish(tmp_path, release, "0.2.2").glob("meter_gateway-*.whl"))
    short.write_bytes(short.read_bytes()[:-20])
    publish(tmp_path, release, "0.3.0")
    with VersionedGateway(config, tmp_path / "gateway.log", release["prefix"]) as gw:
        started(gw, tmp_path)
        assert gw.proc is not None
        pid = gw.proc.pid
        for version, reason in (("0.2.0", "bad_signature"), ("0.2.1", "wrong_hash"),
                                ("0.2.2", "truncated")):
            offer(tmp_path, broker, version)
            event = eventually(lambda v=version: update_event(tmp_path, v, ("update_refused",)),
                               DEADLINE_S, f"update_refused for {version}")
            assert event["d"]["reason"] == reason, event
            assert linked_version(release["prefix"]) == "0.1.0"
            gw.assert_running()
        more_readings(gw, tmp_path, stored_counts(tmp_path / "gateway.db")["shop-01"])
        lines = offer(tmp_path, broker, "0.3.0", wait=True)  # result, then the outcome
        assert lines[1]["event"] == "update_applied", (lines, gw.log_tail())
        assert linked_version(release["prefix"]) == "0.3.0"
        assert linked_version(release["prefix"], "previous") == "0.1.0"
        assert read_update_trial(release["prefix"]) is None
        assert gw.proc.pid == pid  # exec'd into the new venv in place
        more_readings(gw, tmp_path, stored_counts(tmp_path / "gateway.db")["shop-01"])
        assert gw.stop() == 0


def test_a_version_that_crashes_at_start_is_rolled_back(
        sim: RunningSim, broker: Mosquitto, serve: Path, release: dict[str, Any],
        tmp_path: Path) -> None:
    config = config_with_updates(sim, tmp_path, broker, release)
    publish(tmp_path, release, "0.2.0", pth="import os; os._exit(3)")
    log = tmp_path / "gateway.log"
    with VersionedGateway(config, log, release["prefix"]) as gw:
        started(gw, tmp_path)
        offer(tmp_path, broker, "0.2.0")
        assert gw.wait_exit(DEADLINE_S) == 3  # exec'd into 0.2.0, which dies at once
    codes = []
    while linked_version(release["prefix"]) != "0.1.0" and len(codes) < 6:  # Restart=always
        subprocess.run([sys.executable, "-m", "gateway.remote.update_trial",
                        str(release["prefix"])], cwd=REPO, check=True, capture_output=True,
                       timeout=60)  # ExecStartPre
        if linked_version(release["prefix"]) == "0.1.0":
            break
        with VersionedGateway(config, log, release["prefix"]) as again:
            codes.append(again.wait_exit(DEADLINE_S))
    # the exec into 0.2.0 died before any guard ran; then update_max_starts (2) counted starts,
    # and the guard of the third switched back
    assert codes == [3, 3]
    with VersionedGateway(config, log, release["prefix"]) as back:
        event = eventually(lambda: update_event(tmp_path, "0.2.0", ("update_rolled_back",)),
                           DEADLINE_S, "update_rolled_back at the head-end")
        assert event["d"]["reason"].startswith("crash_loop"), event
        more_readings(back, tmp_path, stored_counts(tmp_path / "gateway.db")["shop-01"])
        assert back.stop() == 0


def test_a_download_cut_by_a_link_loss_resumes_where_it_stopped(
        sim: RunningSim, broker: Mosquitto, serve: Path, release: dict[str, Any],
        tmp_path: Path) -> None:
    config = config_with_updates(sim, tmp_path, broker, release)
    config.write_text(config.read_text().replace("update_chunk_bytes = 2048",
                                                 "update_chunk_bytes = 1024"))
    publish(tmp_path, release, "0.2.0", padding=3_000_000)
    log = tmp_path / "gateway.log"
    parts = tmp_path / "update_download" / "0.2.0"
    with VersionedGateway(config, log, release["prefix"]) as gw:
        started(gw, tmp_path)
        offer(tmp_path, broker, "0.2.0")

        def some_received() -> int:
            return sum(p.stat().st_size for p in parts.glob("*.whl.part"))
        eventually(lambda: some_received() > 20_000, DEADLINE_S, "part of the wheel on disk")
        release["proc"].terminate()  # the head-end's side of the link is gone
        release["proc"].wait(20)
        eventually(lambda: "update_download_interrupted" in log.read_text(), DEADLINE_S,
                   "the download stopped")
        kept = some_received()
        assert kept > 20_000
        release["proc"] = release_serve(tmp_path, broker, release["releases"])
        applied = eventually(lambda: update_event(tmp_path, "0.2.0", ("update_applied",
                                                                      "update_rolled_back")),
                             DEADLINE_S, "the outcome of 0.2.0")
        assert applied["e"] == "update_applied", (applied, gw.log_tail())
        resumed = [json.loads(line) for line in log.read_text().splitlines()
                   if "update_download_resumed" in line]
        assert resumed and resumed[0]["offset"] >= kept, resumed
        assert linked_version(release["prefix"]) == "0.2.0"
        assert gw.stop() == 0
