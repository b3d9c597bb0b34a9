"""`gateway iec62056 parse|read`: JSON output, and a non-zero exit naming the reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from drivers.iec62056.sim import MeterSim
from gateway.cli.main import main
from tests.corpus import CORPUS as CORPUS_ROOT

from .conftest import e650

CORPUS = CORPUS_ROOT / "iec62056"
READOUTS = json.loads((CORPUS / "readouts.json").read_text())
TELEGRAMS = json.loads((CORPUS / "dsmr_telegrams.json").read_text())


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_parse_prints_identification_datasets_and_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    e650_entry = READOUTS[4]
    path = _write(tmp_path, "e650.bin",
                  (e650_entry["ident_line"] + e650_entry["readout_text"]).encode("latin-1"))
    assert main(["iec62056", "parse", path]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["identification"]["manufacturer"] == "LGZ"
    assert document["checksum"] == {"kind": "bcc", "verdict": "ok"}
    first = document["datasets"][0]
    assert first == {"address": "0-0:F.F.0", "values": [{"value": "00000000", "unit": None}]}
    assert {"quantity": "import_active_energy", "value": "1005", "unit": "kWh"} in (
        document["samples"])


def test_parse_telegram_with_crc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "p1.txt", TELEGRAMS[0]["telegram"].encode("latin-1"))
    assert main(["iec62056", "parse", path]) == 0
    assert json.loads(capsys.readouterr().out)["checksum"] == {"kind": "crc16", "verdict": "ok"}


def test_wrong_bcc_exits_non_zero_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kamstrup = READOUTS[0]
    path = _write(tmp_path, "kam.bin",
                  (kamstrup["ident_line"] + kamstrup["readout_text"]).encode("latin-1"))
    assert main(["iec62056", "parse", path]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["checksum"]["verdict"] == "bad"
    assert "kam.bin" in captured.err and "BCC 0x61" in captured.err


def test_wrong_crc_exits_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    damaged = TELEGRAMS[0]["telegram"].replace("!6EEE", "!6EEF")
    path = _write(tmp_path, "p1.txt", damaged.encode("latin-1"))
    assert main(["iec62056", "parse", path]) == 1
    assert "CRC 6EEF does not match computed 6EEE" in capsys.readouterr().err


def test_missing_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["iec62056", "parse", str(tmp_path / "nope.bin")]) == 2
    assert "nope.bin" in capsys.readouterr().err


def test_read_through_the_installed_gateway_command() -> None:
    gateway = Path(sys.executable).with_name("gateway")
    with MeterSim([e650()]) as sim:
        done = subprocess.run(
            [str(gateway), "iec62056", "read", "--port", sim.port_path, "--timeout", "30"],
            capture_output=True, text=True, timeout=60, check=False,
        )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["baud"] == 4800
    assert document["checksum"]["verdict"] == "ok"
    assert len(document["datasets"]) == 169


def test_read_of_a_silent_meter_exits_non_zero() -> None:
    with MeterSim([e650(faults={"silent"})]) as sim:
        code = main(["iec62056", "read", "--port", sim.port_path, "--timeout", "30"])
    assert code == 1


def test_parse_of_a_dsmr_telegram_uses_the_p1_mapping(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    two_mbus = next(t for t in TELEGRAMS if "TWO_MBUS" in t["source"])
    path = _write(tmp_path, "p1.txt", two_mbus["telegram"].encode("latin-1"))
    assert main(["iec62056", "parse", path]) == 0
    document = json.loads(capsys.readouterr().out)
    (gas,) = document["submeters"]
    assert (gas["channel"], gas["captured_utc"], gas["dst"]) == (2, "2020-04-26T20:30:01+00:00",
                                                                 True)
    assert {"quantity": "volume", "value": "246.138", "unit": "m3"} in gas["samples"]
    assert document["refused"] == [
        "0-1:24.2.1: no value with a known unit in '(00000000)'"]  # the empty channel
    samples = {s["quantity"]: s["value"] for s in document["samples"]}
    assert samples["meter_datetime"] == "2020-04-26T22:33:25+02:00"
