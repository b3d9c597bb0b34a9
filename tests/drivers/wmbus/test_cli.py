"""`gateway wmbus decode|keys|listen`: command functions and the real `gateway` entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from drivers.mbus.records import RecordSpec
from drivers.wmbus import cli as cmd_wmbus
from drivers.wmbus.builder import build_frame, build_payload
from drivers.wmbus.sim import DongleSimulator

# The OMS specification's mode 5 example (volume 28504.27 m3, 2008-05-31 23:50).
OMS_EXAMPLE = ("2E44931578563412330333637A2A0020255923C95AAA26D1B2E7493BC2AD013EC4A6F6D3529B520E"
               "DFF0EA6DEFC955B29D6D69EBF3EC8A")
OMS_KEY = "0102030405060708090A0B0C0D0E0F11"
GATEWAY = [sys.executable, "-m", "gateway.cli"]
RUN_TIMEOUT_S = 60   # a hung subprocess must not hang the suite


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GATEWAY, "wmbus", *args], capture_output=True, text=True,
                          input=stdin, timeout=RUN_TIMEOUT_S, check=False,
                          cwd=Path(__file__).parents[3])


def test_decode_oms_example_with_key() -> None:
    document = cmd_wmbus.decode_hex(OMS_EXAMPLE, OMS_KEY)
    assert document["manufacturer"] == "ELS"
    assert document["id"] == "12345678"
    assert document["security_mode"] == 5 and document["decrypted"] is True
    assert document["ci_chain"] == ["7A"] and document["access_number"] == 0x2A
    values = {r["quantity"]: r["value"] for r in document["records"]}
    assert values["volume"] == "28504.27"
    assert values["datetime"] == "2008-05-31T23:50"


def test_decode_through_gateway_entry_point() -> None:
    done = run("decode", "--key", OMS_KEY, OMS_EXAMPLE)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["samples"][0] == {
        "quantity": "volume", "value": "28504.27", "unit": "m3"}


def test_decode_wrong_key_fails_with_meter_named() -> None:
    done = run("decode", "--key", "00" * 16, OMS_EXAMPLE)
    assert done.returncode == 1
    assert "wrong key or corrupt telegram (meter 12345678)" in done.stderr


def test_decode_rejects_bad_hex() -> None:
    assert run("decode", "XYZ").returncode == 1


def test_keys_add_list_remove_never_show_keys(tmp_path: Path) -> None:
    key_file = str(tmp_path / "keys")
    assert run("keys", "--key-file", key_file, "add", "12345678", "-", stdin=OMS_KEY + "\n"
               ).returncode == 0
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    listing = run("keys", "--key-file", key_file, "list")
    assert json.loads(listing.stdout)["meters"] == ["12345678"]
    assert OMS_KEY not in listing.stdout + listing.stderr
    assert run("keys", "--key-file", key_file, "remove", "12345678").returncode == 0
    assert run("keys", "--key-file", key_file, "remove", "12345678").returncode == 1


def test_listen_prints_configured_meter(tmp_path: Path) -> None:
    payload = build_payload([RecordSpec(0xC, 0x13, 4242)])
    frame = build_frame("KAM", "22222222", 1, 7, payload, access_number=5)
    sim = DongleSimulator("amb8465", [frame], tmp_path / "amb.tty", interval_s=0.05)
    sim.start()
    try:
        done = run("listen", "--port", str(sim.path), "--dongle", "amb8465", "--meter",
                   "22222222", "--key-file", str(tmp_path / "none"), "--count", "1")
    finally:
        sim.stop()
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stdout.splitlines()[0])
    assert line["meter"] == "22222222"
    assert line["samples"] == [{"quantity": "volume", "value": "4.242", "unit": "m3"}]


@pytest.mark.parametrize("bad", ["1234", "1234567G"])
def test_keys_add_rejects_bad_meter_id(tmp_path: Path, bad: str) -> None:
    done = run("keys", "--key-file", str(tmp_path / "k"), "add", bad, OMS_KEY)
    assert done.returncode == 1
    assert OMS_KEY not in done.stderr


def test_decode_shows_null_and_the_bytes_for_an_invalid_date_and_a_huge_value() -> None:
    payload = build_payload([RecordSpec(0xC, 0x13, 12345),
                             RecordSpec(0x1, 0x0F, 1, vifes=(0x7D,) * 10)]) + bytes.fromhex(
        "426CFFFF")
    frame = build_frame("KAM", "11111111", 0x1B, 0x07, payload, access_number=1)
    document = cmd_wmbus.decode_hex(frame.hex(), None)
    volume, energy, date = document["records"]
    assert volume["value"] == "12.345" and "raw" not in volume
    assert (date["quantity"], date["value"], date["raw"], date["error"]) == (
        "date", None, "ffff", "")
    assert energy["value"] is None and energy["raw"] == "01"
    assert "out of range" in energy["error"]
    assert json.loads(json.dumps(document))["records"][2]["value"] is None
    assert document["samples"] == [{"quantity": "volume", "value": "12.345", "unit": "m3"}]


# Real frames from /work/shared/corpus/wmbus/telegrams.json (wmbusmeters' test data).
TECHEM_MKRADIO3 = ("2F446850313233347462A2069F255900B02931000000030606090603060907060605050905"
                   "0505050407040605070500")
CALTOSE = ("5E44496A12180880FC087A7040500584A63344B5AF071A23539C6020CBBA81FA6ADCFE738682A0924D4F"
           "6F7D89D165C9144E4918CDC2D5F86BE7B5BD8143528273ACCC131A13D0B100F2540DC1F2C379DDE498"
           "4236D3BCA424113CF0EE1BBD")
CALTOSE_KEY = "DC7C9EF16126348CDFD52CE6567A9FFD"


def test_decode_prints_the_quirk_and_the_billing_value_with_its_date() -> None:
    done = run("decode", TECHEM_MKRADIO3)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert (document["quirk"], document["billing_storage"]) == ("techem_mkradio3", 1)
    samples = {s["quantity"]: s["value"] for s in document["samples"]}
    assert samples == {"volume": "13.8", "volume_billing": "8.9", "billing_date": "2018-12-31"}


def test_decode_prints_a_compact_profile_as_a_dated_series() -> None:
    document = cmd_wmbus.decode_hex(CALTOSE, CALTOSE_KEY)
    [series] = document["series"]
    assert (series["quantity"], series["spacing"], series["storage"]) == (
        "heat_cost_allocation", "1 month", 8)
    assert series["points"][0] == {"storage": 9, "at": "2026-01-01", "value": "627"}
    assert not any(m.startswith("record_error") for r in document["records"]
                   for m in r["modifiers"])
