"""Whole-system: the real `gateway run` reads a simulated IEC 60870-5-102 meter over a pty
(serial) and over TCP, and stores its totals and tariff registers exactly."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from drivers.iec102.sim import QUARTER, SimMeter, absolute, default_events
from drivers.iec102.simhost import PtySim, TcpSimThread
from tests.harness.gateway_process import GatewayProcess

GATEWAY = Path(sys.executable).with_name("gateway")
MADRID = ZoneInfo("Europe/Madrid")
FIRST_READING_DEADLINE_S = 60.0


def _wall() -> dt.datetime:
    return dt.datetime.now(MADRID).replace(tzinfo=None)


def _meter() -> SimMeter:
    origin = (_wall() - dt.timedelta(days=40)).replace(hour=0, minute=0, second=0,
                                                       microsecond=0)
    return SimMeter(3, 7, 1234, origin, _wall, events=default_events(origin))


def _config(tmp_path: Path, bus: str) -> Path:
    config = tmp_path / "gateway.toml"
    config.write_text(textwrap.dedent(f"""
        gateway_id = "gw-hil-102"
        timezone = "Europe/Madrid"

        [storage]
        path = "{tmp_path / 'gw.db'}"
    """) + bus + textwrap.dedent("""
        [[meter]]
        id = "ree-1"
        bus = "line"
        protocol = "iec102"
        address = 3
        measuring_point = 7
        password = 1234
        poll_interval_s = 900
        timeout_ms = 2000
    """))
    return config


def _stored(config: Path) -> dict[str, object]:
    done = subprocess.run([str(GATEWAY), "readings", "--config", str(config), "--meter", "ree-1",
                           "--last", "1", "--json"], capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.splitlines()[0]))


def _check(reading: dict[str, object], meter: SimMeter) -> None:
    values = reading["values"]
    assert isinstance(values, dict)
    clock = dt.datetime.fromisoformat(str(values["meter_datetime"])).replace(tzinfo=None)
    period_end = clock.replace(minute=0, second=0, microsecond=0)
    quarters = (period_end - meter.origin) // QUARTER
    assert values["import_active_energy"] == str(absolute(1, quarters))
    assert values["reactive_energy_q1"] == str(absolute(3, quarters))
    assert values["reactive_energy_q4"] == str(absolute(6, quarters))
    now_quarters = (clock - meter.origin) // QUARTER
    total = int(str(values["import_active_energy_t1"])) + int(
        str(values["import_active_energy_t2"]))
    assert abs(total - absolute(1, now_quarters)) <= 7   # the current quarter may have moved
    assert values["max_demand_active_power_t1"] == "42000"


@pytest.mark.parametrize("transport", ["serial", "tcp"])
def test_gateway_process_stores_a_102_meter_exactly(tmp_path: Path, transport: str) -> None:
    meter = _meter()
    if transport == "serial":
        host: PtySim | TcpSimThread = PtySim(meter)
    else:
        host = TcpSimThread(meter)
    with host:
        if isinstance(host, PtySim):
            bus = f'\n[[bus]]\nid = "line"\nport = "{host.port_path}"\nbaudrate = 9600\n'
        else:
            bus = f'\n[[bus]]\nid = "line"\nkind = "tcp"\nhost = "127.0.0.1"\n' \
                  f'tcp_port = {host.port}\n'
        config = _config(tmp_path, bus)
        with GatewayProcess(config, tmp_path / "gateway.log") as gateway:
            gateway.wait_for_readings(tmp_path / "gw.db", ["ree-1"], at_least=1,
                                      deadline_s=FIRST_READING_DEADLINE_S)
            reading = _stored(config)
            assert gateway.stop() == 0, gateway.log_tail()
    _check(reading, meter)
