"""Whole system, remote management: the real `gateway run` (simulated Modbus meters over a pty),
a real Mosquitto and the real `gateway-headend serve` and `config push|get`, `cmd`, `health`
commands. A pushed config whose bus port does not exist is rolled back by the gateway itself
within `[remote] healthy_within_s`, the gateway still serving; a wrong hash and an invalid
config are refused with every problem listed; a good push is applied and the health record
arrives at the head-end with plausible values and the new config version."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.modbus.site import RunningSim, SimBus, SimMeter, site_config, start_simulators
from gateway.remote.trial import TRIAL, read_trial
from tests.harness.eventually import eventually
from tests.harness.gateway_process import GatewayProcess, stored_counts
from uplink.headend.remote_records import RemoteRecords
from uplink.keys import create_private_key, public_pem
from uplink.localbroker import Mosquitto

pytestmark = pytest.mark.broker
GW = "gw-remote"
REPO = Path(__file__).resolve().parents[1]
DEADLINE_S = 120.0  # bounds a broken wait, never a speed requirement
HEALTHY_WITHIN_S = 10
SITE = (SimBus("rs485-1", "rtu", (SimMeter("shop-01", 1, "eastron_sdm630", 1),)),)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RunningSim]:
    running = start_simulators(SITE, tmp_path / "sim")
    yield running
    running.stop()


@pytest.fixture
def serve(broker: Mosquitto, tmp_path: Path) -> Iterator[Path]:
    """`gateway-headend serve` on a SQLite file, the gateway enrolled; yields its state dir."""
    state = tmp_path / "headend"
    state.mkdir()
    server_key = create_private_key(state / "headend_ed25519.pem")
    (tmp_path / "headend_public.pem").write_text(public_pem(server_key))
    gw_key = create_private_key(tmp_path / "gateway_ed25519.pem")
    (tmp_path / "gw_pub.pem").write_text(public_pem(gw_key))
    with (tmp_path / "headend.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uplink.headend.cli", "serve", "--broker", broker.url,
             "--db", str(tmp_path / "headend.db"), "--state", str(state),
             "--enrol", f"{GW}={tmp_path / 'gw_pub.pem'}"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
    yield state
    proc.terminate()
    proc.wait(20)


def write_config(sim: RunningSim, tmp_path: Path, broker: Mosquitto) -> Path:
    extra = f"""
[uplink]
broker_url = "{broker.url}"
key_file = "gateway_ed25519.pem"
server_public_key = "headend_public.pem"
batch_interval_s = 0.3
ack_timeout_s = 5
backoff_min_s = 0.2
backoff_max_s = 2

[remote]
healthy_within_s = {HEALTHY_WITHIN_S}
health_interval_s = 5
"""
    config = tmp_path / "site.toml"
    config.write_text(site_config(sim, tmp_path, gateway_id=GW, poll_interval_s=1,
                                  commit_interval_ms=200, extra=extra))
    return config


def headend(tmp_path: Path, broker: Mosquitto, *words: str,
            timeout_s: float = 240) -> tuple[int, list[dict[str, Any]], str]:
    """Run one `gateway-headend` command; its exit status, JSON lines and stderr."""
    db = ["--db", str(tmp_path / "headend.db")]
    link = ["--broker", broker.url, "--state", str(tmp_path / "headend")]
    argv = [*words, *db, *(link if words[0] in ("config", "cmd") else [])]
    done = subprocess.run([sys.executable, "-m", "uplink.headend.cli", *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout_s)
    return (done.returncode, [json.loads(line) for line in done.stdout.splitlines() if line],
            done.stderr)


def headend_has_records(tmp_path: Path) -> bool:
    import sqlite3

    db = tmp_path / "headend.db"
    if not db.exists():
        return False
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            return bool(conn.execute("SELECT count(*) FROM records WHERE gw = ?",
                                     (GW,)).fetchone()[0])
        except sqlite3.OperationalError:
            return False


def started(gw: GatewayProcess, tmp_path: Path) -> dict[str, int]:
    counts = gw.wait_for_readings(tmp_path / "gateway.db", ["shop-01"], at_least=2)
    eventually(lambda: headend_has_records(tmp_path), DEADLINE_S, "records at the head-end")
    return counts


def more_readings(gw: GatewayProcess, tmp_path: Path, than: int) -> None:
    gw.wait_for_readings(tmp_path / "gateway.db", ["shop-01"], at_least=than + 2,
                         deadline_s=DEADLINE_S)


def test_a_push_that_breaks_the_bus_is_rolled_back_by_the_gateway(
        sim: RunningSim, broker: Mosquitto, serve: Path, tmp_path: Path) -> None:
    config = write_config(sim, tmp_path, broker)
    original = config.read_text()
    broken = tmp_path / "broken.toml"
    broken.write_text(original.replace(sim.ports["rs485-1"]["path"], "/dev/ttyNOPE-remote"))
    with GatewayProcess(config, tmp_path / "gateway.log") as gw:
        started(gw, tmp_path)
        assert gw.proc is not None
        pid = gw.proc.pid
        code, lines, err = headend(tmp_path, broker, "config", "push", GW, str(broken))
        assert code == 1, (err, lines, gw.log_tail())
        result, outcome = lines
        assert result["ok"] and result["r"]["accepted"] and result["r"]["version"] == 2
        assert outcome["event"] == "config_rolled_back", outcome
        assert outcome["data"]["sha256"] == hashlib.sha256(broken.read_bytes()).hexdigest()
        assert "bus-rs485-1" in outcome["data"]["reason"]
        assert config.read_text() == original  # the previous file is back
        gw.assert_running()
        assert gw.proc.pid == pid  # restarted in place (exec), twice
        more_readings(gw, tmp_path, stored_counts(tmp_path / "gateway.db")["shop-01"])
        code, lines, err = headend(tmp_path, broker, "config", "get", GW)
        assert code == 0, err
        assert lines[0]["r"]["version"] == 1 and lines[0]["r"]["trial"] is None
        assert [v["version"] for v in lines[0]["r"]["versions"]] == [1, 2]
        seconds = (outcome["t_ms"] - result["t_ms"]) / 1000
        sys.stderr.write(f"\nrollback: result to config_rolled_back {seconds:.1f} s "
                         f"(healthy_within_s {HEALTHY_WITHIN_S})\n")
        assert gw.stop() == 0


def test_refusals_list_every_problem_and_a_good_push_reports_health(
        sim: RunningSim, broker: Mosquitto, serve: Path, tmp_path: Path) -> None:
    config = write_config(sim, tmp_path, broker)
    original = config.read_text()
    with GatewayProcess(config, tmp_path / "gateway.log") as gw:
        started(gw, tmp_path)
        args = json.dumps({"config": original + "\n", "sha256": "0" * 64})
        code, lines, err = headend(tmp_path, broker, "cmd", "--gw", GW, "--op", "config.push",
                                   "--args", args, "--timeout", "90")
        assert code == 1 and lines[0]["r"]["reason"] == "hash_mismatch", (err, lines)

        invalid = tmp_path / "invalid.toml"
        invalid.write_text(original.replace('gateway_id = "gw-remote"',
                                            'gateway_id = "gw-remote"\ncolour = "red"')
                           .replace('"eastron_sdm630"', '"no_such_profile"')
                           .replace("healthy_within_s = 10", "healthy_within_s = 5"))
        code, lines, err = headend(tmp_path, broker, "config", "push", GW, str(invalid))
        assert code == 1 and len(lines) == 1, (err, lines)
        refused = lines[0]["r"]
        assert refused["reason"] == "invalid_config"
        for key in ("`colour`", "`meter[0].profile`", "`remote.healthy_within_s`"):
            assert any(key in problem for problem in refused["problems"]), refused
        assert config.read_text() == original

        good = tmp_path / "good.toml"
        good.write_text(original.replace("poll_interval_s = 1", "poll_interval_s = 2"))
        code, lines, err = headend(tmp_path, broker, "config", "push", GW, str(good))
        assert code == 0, (err, lines, gw.log_tail())
        assert lines[1]["event"] == "config_applied" and lines[1]["data"]["version"] == 2
        assert config.read_text() == good.read_text()

        def new_health() -> dict[str, Any]:
            code, lines, _ = headend(tmp_path, broker, "health", GW)
            assert code == 0 and lines[0]["config"]["version"] == 2, lines
            return lines[0]
        health = eventually(new_health, DEADLINE_S,
                            "a health record of version 2")
        assert health["config"]["sha256"] == hashlib.sha256(good.read_bytes()).hexdigest()
        assert 5_000_000 < health["rss_bytes"] < 2_000_000_000
        assert health["cpu_ms"] > 0 and health["disk_free_bytes"] > 0
        assert health["uptime_s"] >= 0 and health["outbox"] >= 0
        assert health["temperature_mc"] is None  # the simulated board offers none
        assert health["written_bytes_per_h"] is None or health["written_bytes_per_h"] >= 0
        assert health["buses"]["rs485-1"]["protocol"] == "modbus"
        assert health["buses"]["rs485-1"]["counters"]["ok"] >= 1
        assert health["clock_synced"] is True and health["uplink"]["connected"] is True
        assert health["version"]["gateway"]
        sys.stderr.write(f"\nhealth record: {json.dumps(health)}\n")
        assert gw.stop() == 0


def test_a_gateway_killed_while_on_trial_starts_again_on_the_previous_config(
        sim: RunningSim, broker: Mosquitto, serve: Path, tmp_path: Path) -> None:
    config = write_config(sim, tmp_path, broker)
    original = config.read_text()
    broken = tmp_path / "broken.toml"
    broken.write_text(original.replace(sim.ports["rs485-1"]["path"], "/dev/ttyNOPE-remote"))
    sha = hashlib.sha256(broken.read_bytes()).hexdigest()
    log = tmp_path / "gateway.log"
    with GatewayProcess(config, log) as gw:
        started(gw, tmp_path)
        records = RemoteRecords(tmp_path / "headend.db")
        after = records.mark()
        code, lines, err = headend(tmp_path, broker, "config", "push", GW, str(broken),
                                   "--no-wait")
        assert code == 0 and lines[0]["r"]["accepted"], (err, lines)

        def on_trial() -> bool:
            trial = read_trial(config)
            return trial is not None and trial.state == TRIAL
        eventually(on_trial, DEADLINE_S, "the new config on trial")
        gw.kill()  # a crash (or the systemd watchdog) before it proved itself
    assert config.read_text() == broken.read_text()
    with GatewayProcess(config, log) as again:  # systemd: Restart=always
        outcome = eventually(lambda: records.config_outcome(GW, sha, after), DEADLINE_S,
                             "config_rolled_back at the head-end")
        assert outcome is not None and outcome["event"] == "config_rolled_back"
        assert outcome["data"]["reason"] == "restarted_during_trial"
        assert config.read_text() == original and read_trial(config) is None
        more_readings(again, tmp_path, stored_counts(tmp_path / "gateway.db")["shop-01"])
        assert again.stop() == 0
    records.close()
