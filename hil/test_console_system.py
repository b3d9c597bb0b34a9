"""Whole system: a technician drives the real `gateway run` through `gateway console` (the
local control socket) on a pseudo-terminal: login, status, meters, read, relay with
confirmation, bad input; the action is audited and the service keeps running."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from drivers.modbus.site import RunningSim, SimBus, SimMeter, site_config, start_simulators
from tests.harness.eventually import eventually
from tests.harness.gateway_process import GatewayProcess

SITE = (SimBus("rs485-1", "rtu", (SimMeter("shop-01", 1, "eastron_sdm630", 1),)),)
PASSWORD = "correct-horse-9"
EXPECT_TIMEOUT_S = 60


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RunningSim]:
    running = start_simulators(SITE, tmp_path / "sim")
    yield running
    running.stop()


def test_technician_session_against_the_running_service(sim: RunningSim, tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text(site_config(sim, tmp_path, poll_interval_s=2, extra=f"""
[console]
socket = "{tmp_path / 'control.sock'}"

[prepay]
timezone = "UTC"
currency = "EUR"

[prepay.tariffs.flat]
currency = "EUR"
versions = [ {{ effective_from = "2020-01-01", price = "0.30" }} ]

[prepay.meters.shop-01]
tariff = "flat"
mode = "manual"
warn_limit = "1.00"
relay = "relay-shop-01"
"""))
    made = subprocess.run([sys.executable, "-m", "gateway.cli", "console", "passwd", "--config",
                           str(config), "ana", "--role", "admin", "--password-stdin"],
                          input=PASSWORD + "\n", text=True, capture_output=True, timeout=60,
                          check=False)
    assert made.returncode == 0, made.stderr
    log = tmp_path / "gateway.log"
    with GatewayProcess(config, log) as service:
        eventually(lambda: (tmp_path / "control.sock").exists(), EXPECT_TIMEOUT_S,
                   "the control socket")
        console = pexpect.spawn(sys.executable, ["-m", "gateway.cli", "console", "--config",
                                                 str(config)],
                                timeout=EXPECT_TIMEOUT_S, encoding="utf-8")
        console.logfile_read = (tmp_path / "console.txt").open("w")
        console.sendline("")
        console.expect("login:")
        console.sendline("ana")
        console.expect("password:")
        console.sendline(PASSWORD)
        console.expect("ana> ")
        console.sendline("status")
        console.expect("gw-demo")
        console.expect("ana> ")
        console.sendline("read shop-01")
        console.expect("voltage_l1")
        console.expect("ana> ")
        console.sendline("meters")
        console.expect("shop-01")
        console.expect("ana> ")
        console.sendline("relay shop-01 off")
        console.expect("Type yes to confirm")
        console.sendline("y")  # anything but "yes" cancels a switching
        console.expect("Cancelled")
        console.expect("ana> ")
        console.sendline("relay shop-01 off")
        console.expect("Type yes to confirm")
        console.sendline("yes")
        console.expect("ana> ")
        console.sendline("frobnicate")
        console.expect("ana> ")
        console.sendline("\x00\x01\xff garbage " + "x" * 3000)
        console.expect("ana> ")
        console.sendline("quit")
        console.expect(pexpect.EOF)
        service.assert_running()  # the service kept running through all of it
        assert '"relay-shop-01": false' in (tmp_path / "board" / "outputs.json").read_text()
        assert service.stop() == 0, service.log_tail()
    with sqlite3.connect(tmp_path / "gateway.db") as conn:
        audits = conn.execute("SELECT data FROM events WHERE kind = 'audit'").fetchall()
    assert any("relay" in data for (data,) in audits)


def _login(config: Path, transcript: Path) -> pexpect.spawn:
    console = pexpect.spawn(sys.executable, ["-m", "gateway.cli", "console", "--config",
                                             str(config)], timeout=EXPECT_TIMEOUT_S,
                            encoding="utf-8")
    console.logfile_read = transcript.open("a")
    console.sendline("")
    console.expect("login:")
    console.sendline("ana")
    console.expect("password:")
    console.sendline(PASSWORD)
    console.expect("ana> ")
    return console


def _started_events(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(
            "SELECT count(*) FROM events WHERE kind = 'gateway_started'").fetchone()[0])


def test_config_set_as_typed_then_restart_applies_it(sim: RunningSim, tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text(site_config(sim, tmp_path, poll_interval_s=2, extra=f"""
# the technician's console
[console]
socket = "{tmp_path / 'control.sock'}"
"""))
    made = subprocess.run([sys.executable, "-m", "gateway.cli", "console", "passwd", "--config",
                           str(config), "ana", "--role", "admin", "--password-stdin"],
                          input=PASSWORD + "\n", text=True, capture_output=True, timeout=60,
                          check=False)
    assert made.returncode == 0, made.stderr
    log = tmp_path / "gateway.log"
    socket = tmp_path / "control.sock"
    with GatewayProcess(config, log) as service:
        eventually(socket.exists, EXPECT_TIMEOUT_S, "the control socket")
        console = _login(config, tmp_path / "console.txt")
        console.sendline("config set log.level debug")  # a bare word, as a technician types
        console.expect("Saved log.level = \"debug\"")
        console.expect("ana> ")
        console.sendline("restart")
        console.expect("Type yes to confirm")
        console.sendline("yes")
        console.expect("Restarting the service")
        console.expect("ana> ")
        eventually(lambda: _started_events(tmp_path / "gateway.db") >= 2, EXPECT_TIMEOUT_S,
                   "the second gateway_started")
        assert _started_events(tmp_path / "gateway.db") == 2, service.log_tail()
        service.assert_running()  # the same process serves again (exec in place)
        assert "# the technician's console" in config.read_text()
        assert 'level = "debug"' in config.read_text()
        console.sendline("status")  # this session's connection ended with the old process
        console.expect("lost the gateway service")
        console.sendline("quit")
        console.expect(pexpect.EOF)
        eventually(socket.exists, EXPECT_TIMEOUT_S, "the control socket again")
        console = _login(config, tmp_path / "console.txt")  # the console answers again
        console.sendline("quit")
        console.expect(pexpect.EOF)
        assert service.stop() == 0, service.log_tail()
    # The new level is in force after the restart: DEBUG lines appear only in the second run.
    runs = log.read_text().split('"restarting"')
    assert len(runs) == 2 and '"level":"debug"' not in runs[0]
    assert '"level":"debug"' in runs[1]
