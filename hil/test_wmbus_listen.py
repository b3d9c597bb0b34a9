"""Whole process: `gateway wmbus listen` against an iM871A simulator with a faulty radio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from drivers.mbus.records import RecordSpec
from drivers.wmbus.builder import build_frame, build_payload
from drivers.wmbus.keys import KeyStore
from drivers.wmbus.sim import DongleSimulator, Faults

KEY = "00112233445566778899AABBCCDDEEFF"
RUN_TIMEOUT_S = 60   # a stuck listener must fail the test, not hang the suite


def test_listen_decrypts_through_garbage_crc_errors_and_dropouts(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys")
    keys.add("33333333", KEY)
    frames = [build_frame("KAM", "33333333", 1, 7, build_payload([RecordSpec(0xC, 0x13, n)]),
                          access_number=n, key=bytes.fromhex(KEY)) for n in range(1, 30)]
    frames.append(build_frame("SEN", "44444444", 1, 7, build_payload([RecordSpec(0x4, 0x13, 1)])))
    sim = DongleSimulator("im871a", frames, tmp_path / "im.tty", interval_s=0.03,
                          faults=Faults(garbage=0.3, crc_error=0.2, dropout=0.1))
    sim.start()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "wmbus", "listen", "--port", str(sim.path),
             "--dongle", "im871a", "--mode", "T1", "--meter", "33333333",
             "--key-file", str(tmp_path / "keys"), "--count", "5"],
            capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
            cwd=Path(__file__).parents[1])
    finally:
        sim.stop()
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 5
    for line in lines:
        assert line["meter"] == "33333333"
        (sample,) = line["samples"]
        assert sample["quantity"] == "volume" and sample["unit"] == "m3"
    summary = json.loads(done.stderr.strip().splitlines()[-1])
    assert summary["counters"]["telegrams"] >= 5
    assert sim.link_mode == 0x03   # T1 was configured on the dongle
