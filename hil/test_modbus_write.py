"""Whole system, register writes: the real `gateway run` reading a simulated SDM630 over a pty,
a real Mosquitto, the real `gateway-headend serve` and `gateway-headend cmd --op modbus.write`.
A write within the profile's range is made between the polls, read back and answered with the
old and new values; the simulator holds the words; a register the profile does not declare
writable and a value out of range are refused with their reasons; every attempt arrives at the
head-end as an audited event with the command id; the readings go on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.modbus.site import RunningSim, SimBus, SimMeter, start_simulators
from hil.test_remote_config import headend, more_readings, serve, started, write_config
from tests.harness.eventually import eventually
from tests.harness.gateway_process import GatewayProcess
from uplink.localbroker import Mosquitto

pytestmark = pytest.mark.broker
__all__ = ["serve"]  # the head-end fixture, shared with the remote-config test
DEADLINE_S = 120.0  # bounds a broken wait, never a speed requirement
SITE = (SimBus("rs485-1", "rtu", (SimMeter("shop-01", 1, "eastron_sdm630", 1),)),)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RunningSim]:
    running = start_simulators(SITE, tmp_path / "sim")
    yield running
    running.stop()


def _write(tmp_path: Path, broker: Mosquitto, cmd_id: str,
           **args: str) -> tuple[int, dict[str, Any], str]:
    code, lines, err = headend(tmp_path, broker, "cmd", "--gw", "gw-remote", "--op",
                               "modbus.write", "--id", cmd_id, "--args", json.dumps(args),
                               "--timeout", "90")
    assert len(lines) == 1, (code, lines, err)
    return code, lines[0], err


def _written(sim: RunningSim) -> list[dict[str, Any]]:
    lines = sim.record_file.read_text().splitlines()
    return [entry["written"] for entry in map(json.loads, lines) if "written" in entry]


def _events(tmp_path: Path, broker: Mosquitto) -> list[dict[str, Any]]:
    code, lines, err = headend(tmp_path, broker, "export", "--gw", "gw-remote", "--kind",
                               "event")
    assert code == 0, err
    return [line["body"] for line in lines
            if line["body"]["e"] in ("register_written", "register_write_failed")]


def test_the_head_end_writes_a_register_read_back_and_audited(
        sim: RunningSim, broker: Mosquitto, serve: Path, tmp_path: Path) -> None:
    config = write_config(sim, tmp_path, broker)
    with GatewayProcess(config, tmp_path / "gateway.log") as gw:
        counts = started(gw, tmp_path)
        code, ok, err = _write(tmp_path, broker, "w-1", meter="shop-01",
                               register="demand_period", value="15")
        assert code == 0 and ok["ok"], (ok, err, gw.log_tail())
        assert (ok["r"]["old"], ok["r"]["new"], ok["r"]["read_back"]) == ("0", "15", "15")
        assert _written(sim)[-1] == {"address": 2, "words": [0x4170, 0], "refused": None}

        code, refused, _err = _write(tmp_path, broker, "w-2", meter="shop-01",
                                     register="voltage_l1", value="1")
        assert code == 1 and refused["r"]["reason"] == "not_writable", refused
        code, refused, _err = _write(tmp_path, broker, "w-3", meter="shop-01",
                                     register="demand_period", value="90")
        assert code == 1 and refused["r"]["reason"] == "out_of_range", refused
        assert len(_written(sim)) == 1  # the refusals sent nothing to the meter
        more_readings(gw, tmp_path, than=counts["shop-01"])
        eventually(lambda: len(_events(tmp_path, broker)) == 3, DEADLINE_S,
                   "the three audited events at the head-end")
        gw.assert_running()
    audited = [(e["e"], e["d"]["command_id"], e["d"].get("reason"), e["d"].get("new"))
               for e in _events(tmp_path, broker)]
    assert audited == [("register_written", "w-1", None, "15"),
                       ("register_write_failed", "w-2", "not_writable", None),
                       ("register_write_failed", "w-3", "out_of_range", "90")], audited
