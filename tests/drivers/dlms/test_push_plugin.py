"""The dlms_push plugin against the push simulator on a pty: ciphered, segmented pushes of
corpus lists read exactly through the transport kit, a replay and damage counted, the port's
config checks, its keys, its counters typed."""

from __future__ import annotations

import asyncio
import os
import tty
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.clock import FakeClock
from core.schema import Problems
from drivers.dlms.counters import CounterFile
from drivers.dlms.hdlc import decode_frame
from drivers.dlms.keys import DlmsKeyFile
from drivers.dlms.push_plugin import PLUGIN
from drivers.dlms.push_sim import PushMeterSim, PushSim
from drivers.dlms.security import Keys
from drivers.plugin import Context, SerialParams
from drivers.readings import Sample
from tests.drivers.dlms.corpus import entries
from tests.harness.eventually import eventually_async

KEYS = Keys(bytes(range(16)), bytes(range(16, 32)))
TITLE = b"KFM\x00\x00\x12\x34\x56"
DEADLINE_S = 20.0  # bounds a broken wait, not a speed requirement


def _plain(name: str) -> bytes:
    entry = next(e for e in entries() if e["name"] == name)
    raw = bytes.fromhex(entry["frames_hex"][0])
    return (decode_frame(raw)[0].information if raw[:1] == b"\x7e" else raw)[3:]


README = _plain("AmsToMqttBridge/Kaifa/readme-sample")  # published: 1320 W
LIST1 = _plain("AmsToMqttBridge/Kaifa/obisdata-list1")  # published: 0.601 kW


@dataclass
class Bus:
    id: str = "han"
    kind: str = "serial"
    port: str = ""
    baudrate: int = 2400
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1
    rs485: dict[str, Any] = field(default_factory=dict)
    inter_request_gap_ms: int = 0
    host: str = ""
    tcp_port: int = 0
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Meter:
    id: str = "han-1"
    bus: str = "han"
    protocol: str = "dlms_push"
    address: int | str = ""
    poll_interval_s: int = 60
    profile: str = "generic"
    commodity: str = "electricity"
    timeout_ms: int = 3000
    options: dict[str, Any] = field(default_factory=dict)


def _open_serial(params: SerialParams) -> int:
    fd = os.open(params.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    return fd


async def test_ciphered_segmented_pushes_are_read_and_a_replay_refused(tmp_path: Path) -> None:
    keys = DlmsKeyFile(tmp_path / "dlms-keys")
    keys.add("han-1", "encryption", KEYS.encryption.hex())
    keys.add("han-1", "authentication", KEYS.authentication.hex())
    # counters: lead 1.., then README, a broken LIST1 (never accepted), the replayed README,
    # LIST1
    script: list[bytes | str] = [README, "garbage", "bad_fcs", LIST1, "replay", LIST1]
    with PushSim(script, PushMeterSim(TITLE, KEYS), interval_s=0.05, segment_bytes=24,
                 lead=LIST1) as sim:
        context = Context(open_serial=_open_serial, events=lambda *a: None, clock=FakeClock(),
                          data_dir=tmp_path)
        meter = Meter(options={"system_title": TITLE.hex(), "profile": "kaifa"})
        assert PLUGIN.open_pushed is not None
        source = PLUGIN.open_pushed(Bus(port=sim.port_path), [meter], context)
        got: list[tuple[str, list[Sample]]] = []
        task = asyncio.create_task(source.run(lambda m, s, _ts: got.append((m, s))))
        try:
            await eventually_async(lambda: got, DEADLINE_S, "the lead push")
            sim.play()
            await eventually_async(lambda: len(got) >= 2 and got[-1][1][0].value == Decimal(
                "601") and got[-2][1][0].value == Decimal("1320"), DEADLINE_S, "the script")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    values = [s[0].value for _, s in got]
    assert values.count(Decimal("1320")) == 1  # the replayed README was not accepted again
    assert {m for m, _ in got} == {"han-1"} and values[-1] == Decimal("601")
    assert PLUGIN.pushed_counters is not None
    raw = PLUGIN.pushed_counters(source, "han-1")
    assert raw["pushes"] == len(got) and raw["replays"] == 1
    typed = PLUGIN.counters.typed(PLUGIN.pushed_counters(source, None))
    assert typed["ok"] == len(got) and typed["checksum"] >= 1
    # the last accepted counter reached the file when the task ended: a restart refuses
    last = CounterFile(tmp_path / "dlms-counters.json").server_last("push:" + TITLE.hex().upper())
    assert last == sim.counter - 1
    assert PLUGIN.keys is not None and PLUGIN.keys(source) == [("han-1", "han-1")]


def test_several_meters_on_a_port_each_need_a_system_title_of_their_own() -> None:
    problems = Problems("site.toml")
    meters = [("meter[0]", Meter()), ("meter[1]", Meter(id="han-2", options={
        "system_title": TITLE.hex()})), ("meter[2]", Meter(id="han-3", options={
            "system_title": TITLE.hex()}))]
    PLUGIN.check(Bus(), "bus[0]", meters, problems)
    assert len(problems.lines) == 2
    assert "`meter[0].system_title`: several meters" in problems.lines[0]
    assert "`meter[2].system_title`" in problems.lines[1] and "'han-2'" in problems.lines[1]
    alone = Problems("site.toml")
    PLUGIN.check(Bus(), "bus[0]", [("meter[0]", Meter())], alone)
    assert not alone


def test_the_key_and_counter_files_default_to_the_dlms_ones_and_are_checked(
        tmp_path: Path) -> None:
    assert PLUGIN.resolve_paths is not None and PLUGIN.check_files is not None
    resolved = PLUGIN.resolve_paths({"push_counter_file": "c.json"}, lambda p: tmp_path / p,
                                    tmp_path)
    assert resolved["push_key_file"] == str(tmp_path / "dlms-keys")
    assert resolved["push_counter_file"] == str(tmp_path / "c.json")
    (tmp_path / "c.json").write_text("{}")
    os.chmod(tmp_path / "c.json", 0o644)
    problems = Problems("site.toml")
    PLUGIN.check_files(Bus(options=resolved), "bus[0]", problems)
    assert len(problems.lines) == 1 and "push_counter_file" in problems.lines[0]
    assert "chmod 600" in problems.lines[0]
