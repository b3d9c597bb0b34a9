"""Whole-system: the real `gateway run` reads a simulated DLMS meter over HDLC on a pty with
HLS-GMAC and suite-0 ciphering (keys from the 0600 key file, invocation counters across a
gateway restart and a SIGKILL) and over the TCP wrapper, and stores its registers exactly."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

from drivers.dlms.keys import DlmsKeyFile
from drivers.dlms.security import Keys
from drivers.dlms.server import ServerSettings
from drivers.dlms.simhost import SimHost
from tests.harness.gateway_process import GatewayProcess

GATEWAY = Path(sys.executable).with_name("gateway")
KEYS = Keys(bytes.fromhex("000102030405060708090A0B0C0D0E0F"),
            bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"))
FIRST_READING_DEADLINE_S = 60.0


def _config(tmp_path: Path, bus: str, meter: str) -> Path:
    config = tmp_path / "gateway.toml"
    config.write_text(textwrap.dedent(f"""
        gateway_id = "gw-hil-dlms"
        timezone = "UTC"

        [storage]
        path = "{tmp_path / 'gw.db'}"
    """) + bus + textwrap.dedent("""
        [[meter]]
        id = "flat-7"
        bus = "line"
        protocol = "dlms"
        address = 17
        poll_interval_s = 1
        timeout_ms = 2000
        # registers only: the readings counted below are polls (the meter's own records:
        # hil/test_dlms_profile_system.py)
        load_profile_every = 0
        billing_every = 0
    """) + meter)
    return config


def _stored(config: Path) -> dict[str, str]:
    done = subprocess.run([str(GATEWAY), "readings", "--config", str(config), "--meter",
                           "flat-7", "--last", "1", "--json"], capture_output=True, text=True,
                          check=True)
    values = json.loads(done.stdout.splitlines()[0])["values"]
    return {str(k): str(v) for k, v in values.items()}


def _check(values: dict[str, str], energies_wh: set[int]) -> None:
    assert values["voltage_l1"] == "230.1"
    assert values["current_l1"] == "6.52"
    assert Decimal(values["export_active_energy"]) == Decimal("43.21")  # 4321 x 10^1 Wh
    assert Decimal(values["import_active_energy"]) * 1000 in energies_wh


def test_gateway_reads_hdlc_with_hls_gmac_across_restarts(tmp_path: Path) -> None:
    keys = DlmsKeyFile(tmp_path / "dlms-keys")  # beside the database: the default place
    keys.add("flat-7", "encryption", KEYS.encryption.hex())
    keys.add("flat-7", "authentication", KEYS.authentication.hex())
    with SimHost("hdlc", ServerSettings(keys=KEYS)) as host:
        config = _config(tmp_path, f'\n[[bus]]\nid = "line"\nport = "{host.port_path}"\n'
                                   'baudrate = 9600\n',
                         'client = 1\nauthentication = "hls_gmac"\n')
        before = host.call(host.objects.energy_now)
        with GatewayProcess(config, tmp_path / "gateway.log") as gateway:
            gateway.wait_for_readings(tmp_path / "gw.db", ["flat-7"], at_least=2,
                                      deadline_s=FIRST_READING_DEADLINE_S)
            assert gateway.kill() != 0  # a power cut: nothing flushed, nothing released
        seen = host.call(lambda: dict(host.app.client_counters))
        with GatewayProcess(config, tmp_path / "gateway.log") as gateway:
            counts = gateway.wait_for_readings(tmp_path / "gw.db", ["flat-7"], at_least=4,
                                               deadline_s=FIRST_READING_DEADLINE_S)
            assert gateway.stop() == 0, gateway.log_tail()
        after = host.call(host.objects.energy_now)
        # the restarted gateway's counters were above every one the meter had seen
        assert host.call(lambda: dict(host.app.client_counters))[1] > seen[1]
    assert counts["flat-7"] >= 4
    _check(_stored(config), set(range(before, after + 1, 250)))
    assert (tmp_path / "dlms-counters.json").stat().st_mode & 0o777 == 0o600
    log = (tmp_path / "gateway.log").read_text()
    assert KEYS.encryption.hex() not in log.lower() and "d0d1d2" not in log.lower()


def test_gateway_reads_over_the_tcp_wrapper(tmp_path: Path) -> None:
    with SimHost("tcp") as host:
        config = _config(tmp_path, f'\n[[bus]]\nid = "line"\nkind = "tcp"\n'
                                   f'host = "127.0.0.1"\ntcp_port = {host.port}\n', "")
        before = host.call(host.objects.energy_now)
        with GatewayProcess(config, tmp_path / "gateway.log") as gateway:
            gateway.wait_for_readings(tmp_path / "gw.db", ["flat-7"], at_least=1,
                                      deadline_s=FIRST_READING_DEADLINE_S)
            assert gateway.stop() == 0, gateway.log_tail()
        after = host.call(host.objects.energy_now)
    _check(_stored(config), set(range(before, after + 1, 250)))
