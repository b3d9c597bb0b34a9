"""`gateway-headend loadtest`: a small simulated fleet through a real Mosquitto into a real
PostgreSQL via two workers; every record stored exactly once and every batch acked."""

import json
from pathlib import Path

import pytest

from uplink.headend import cli
from uplink.headend.localpg import LocalPostgres
from uplink.localbroker import Mosquitto


def test_two_workers_store_every_record_once(broker: Mosquitto, pg_url: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["loadtest", "--gateways", "12", "--meters", "30", "--minutes", "20",
                     "--workers", "2", "--broker", broker.url, "--db", pg_url])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0, result
    assert result["all_acked"] and result["records"] == 12 * 30 * 20
    assert (result["missing_records"], result["incomplete_gateways"], result["forks"],
            result["duplicate_records"]) == (0, 0, 0, 0)
    assert result["batches"] > 12  # several batches per gateway: the chains are exercised


def test_local_services_when_none_given(tmp_path: Path, pg_server: LocalPostgres,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Without --broker / --db the load test starts its own Mosquitto and PostgreSQL."""
    assert cli.main(["loadtest", "--gateways", "3", "--meters", "5", "--minutes", "2",
                     "--workers", "1"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["ok"]
