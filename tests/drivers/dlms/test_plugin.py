"""The dlms plugin and its bus reader against the simulated meter: exact samples over HDLC
on a pty and the wrapper over TCP, scalers read once, a retry, counters, keys, the CLI."""

from __future__ import annotations

import argparse
import json
import os
import tty
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.clock import FakeClock
from drivers.dlms.cli import parse_object, register
from drivers.dlms.client import Authentication, Credentials
from drivers.dlms.counters import CounterFile
from drivers.dlms.keys import DlmsKeyFile
from drivers.dlms.plugin import PLUGIN
from drivers.dlms.read_profiles import read_profile, read_profiles
from drivers.dlms.reader import DlmsBus, MeterSettings
from drivers.dlms.security import Keys
from drivers.dlms.server import CosemServer, ServerSettings
from drivers.dlms.sim import HdlcServerLink, LoopbackStream, PtyMeter, TcpMeter
from drivers.dlms.sim_objects import SimObjects
from drivers.errors import DeviceRejected, DeviceTimeout
from drivers.plugin import Context, SerialParams
from drivers.readings import Sample
from tests.drivers.dlms import vectors

KEYS = Keys(bytes(range(16)), bytes(range(16, 32)))
EXPECTED = {Sample("import_active_energy", Decimal("12346.678"), "kWh"),
            Sample("export_active_energy", Decimal("43.21"), "kWh"),
            Sample("voltage_l1", Decimal("230.1"), "V"),
            Sample("current_l1", Decimal("6.52"), "A")}


def _far(clock: FakeClock | None = None, **settings: Any) -> HdlcServerLink:
    objects = SimObjects((clock or FakeClock()).wall_ms)
    from drivers.dlms.hdlc import Address

    return HdlcServerLink(CosemServer(objects, ServerSettings(keys=KEYS, **settings)),
                          Address(1, 17, 2))


def _settings(auth: Authentication = Authentication.NONE, **kw: Any) -> MeterSettings:
    client = {Authentication.NONE: 16, Authentication.LLS: 17, Authentication.HLS_GMAC: 1}[auth]
    creds = Credentials(auth, password=b"00000000" if auth is Authentication.LLS else None,
                        keys=KEYS if auth is Authentication.HLS_GMAC else None,
                        ciphered=auth is Authentication.HLS_GMAC)
    return MeterSettings("m1", creds, read_profile("generic"), client=client, **kw)


@pytest.mark.parametrize("auth", list(Authentication))
async def test_a_read_gives_exact_samples_and_asks_scalers_once(tmp_path: Path,
                                                                auth: Authentication) -> None:
    far = _far()
    bus = DlmsBus(CounterFile(tmp_path / "c.json"), open_line=lambda: LoopbackStream(far))
    got = await bus.read_meter(_settings(auth))
    assert set(got) >= EXPECTED
    assert any(s.quantity == "meter_datetime" for s in got)
    before = far.app.requests
    assert set(await bus.read_meter(_settings(auth))) >= EXPECTED
    calls = far.app.requests - before
    assert calls == (4 if auth is Authentication.HLS_GMAC else 3)  # AARQ, (HLS), list, RLRQ
    assert bus.counters("m1")["reads_ok"] == 2
    await bus.close()


async def test_a_lost_answer_is_retried_on_a_new_connection(tmp_path: Path) -> None:
    far = _far()
    bus = DlmsBus(CounterFile(tmp_path / "c.json"), open_line=lambda: LoopbackStream(far))
    far.faults.spoil_fcs = 3  # the UA and both RR polls for it: this connection is lost
    assert set(await bus.read_meter(_settings(timeout_s=0.2))) >= EXPECTED
    assert bus.counters("m1")["retries"] == 1
    far.faults.silent = True
    with pytest.raises(DeviceTimeout):
        await bus.read_meter(_settings(timeout_s=0.05))
    typed = PLUGIN.counters.typed(bus.counters("m1"))
    assert typed["timeouts"] == 1 and typed["ok"] == 1 and typed["other"] == 0


async def test_a_refused_association_is_counted_and_not_retried(tmp_path: Path) -> None:
    far = _far(refuse_association=True)
    bus = DlmsBus(CounterFile(tmp_path / "c.json"), open_line=lambda: LoopbackStream(far))
    with pytest.raises(DeviceRejected):
        await bus.read_meter(_settings())
    assert bus.counters("m1")["rejected"] == 1 and "retries" not in bus.counters("m1")


@dataclass
class Bus:
    id: str = "line"
    kind: str = "serial"
    port: str = ""
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1
    rs485: dict[str, Any] = field(default_factory=dict)
    inter_request_gap_ms: int = 0
    host: str = "127.0.0.1"
    tcp_port: int = 4059
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Meter:
    id: str = "shop-1"
    bus: str = "line"
    protocol: str = "dlms"
    address: int | str = 17
    poll_interval_s: int = 60
    profile: str = "generic"
    commodity: str = "electricity"
    timeout_ms: int = 3000
    options: dict[str, Any] = field(default_factory=dict)


def _context(tmp_path: Path, opener: Any = None) -> Context:
    return Context(open_serial=opener or (lambda params: None),
                   events=lambda *a: None, clock=FakeClock(), data_dir=tmp_path)


async def test_the_plugin_reads_hls_gmac_over_a_pty_with_keys_from_the_key_file(
        tmp_path: Path) -> None:
    meter = await PtyMeter(_far()).start()
    keys = DlmsKeyFile(tmp_path / "dlms-keys")
    keys.add("shop-1", "encryption", KEYS.encryption.hex())
    keys.add("shop-1", "authentication", KEYS.authentication.hex())

    def open_serial(params: SerialParams) -> int:
        fd = os.open(params.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(fd)
        return fd

    assert PLUGIN.open_polled is not None
    opened = PLUGIN.open_polled(Bus(port=meter.gateway_path), _context(tmp_path, open_serial))
    try:
        got = await opened.read(Meter(options={"client": 1, "authentication": "hls_gmac"}))
        assert set(got) >= EXPECTED
        assert PLUGIN.keys is not None and PLUGIN.keys(opened) == [("shop-1", "shop-1")]
        assert CounterFile(tmp_path / "dlms-counters.json").server_last("shop-1") is not None
    finally:
        await opened.close()
        await meter.stop()


async def test_the_plugin_reads_over_the_tcp_wrapper(tmp_path: Path) -> None:
    meter = await TcpMeter(CosemServer(SimObjects(FakeClock().wall_ms))).start()
    assert PLUGIN.open_polled is not None
    opened = PLUGIN.open_polled(Bus(kind="tcp", tcp_port=meter.port), _context(tmp_path))
    try:
        got = await opened.read(Meter(options={"obis": ["1-0:32.7.0.255"]}))
        assert Sample("voltage_l1", Decimal("230.1"), "V") in got
        assert not any(s.quantity == "import_active_energy" and s.at_ms is None for s in got)
        # the meter's load profile and billing closures come as dated samples of their own
        assert {s.series for s in got if s.at_ms is not None} == {"load_profile", "billing"}
        assert opened.counters("shop-1")["records"] >= 5 + 12
    finally:
        await opened.close()
        await meter.stop()


def test_profiles_and_object_specs() -> None:
    assert "generic" in read_profiles()
    assert parse_object("0-0:1.0.0.255")[0] == 8
    assert parse_object("7/1-0:99.1.0.255/2") == (7, "1-0:99.1.0.255", 2)
    with pytest.raises(ValueError):
        parse_object("1.8.0")


def _cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"), lambda port: lambda params: None)
    return parser.parse_args(argv)


def test_cli_decode_prints_objects_with_exact_values(capsys: pytest.CaptureFixture[str]) -> None:
    vector = next(v for v in vectors.VECTORS if v.name == "wrapped-push")
    args = _cli("dlms", "decode", *vector.frames_hex, "--key", vectors.EK.hex(),
                "--auth-key", vectors.AK.hex())
    assert args.func(args) == 0
    document = json.loads(capsys.readouterr().out)
    assert {"link", "apdu", "objects"} <= set(document)
    assert document["objects"]
    assert all({"obis", "value", "unit", "scaler"} <= set(o) for o in document["objects"])


def test_cli_decode_refuses_garbage_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    args = _cli("dlms", "decode", "7EA0")
    assert args.func(args) == 1
    assert "error" in json.loads(capsys.readouterr().err)


def test_cli_read_and_profile_over_tcp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import UTC, datetime, timedelta

    from drivers.dlms.simhost import SimHost

    with SimHost("tcp") as host:
        common = ("--host", "127.0.0.1", "--tcp-port", str(host.port), "--counter-file",
                  str(tmp_path / "c.json"))
        args = _cli("dlms", "read", *common, "1-0:32.7.0.255", "0-0:96.3.10.255",
                    "8/0-0:1.0.0.255/3")
        assert args.func(args) == 0, capsys.readouterr().err
        objects = json.loads(capsys.readouterr().out)["objects"]
        assert objects[0] == {"obis": "1-0:32.7.0.255", "value": "230.1", "unit": "V",
                              "scaler": -1}
        assert objects[1]["value"] == "connected" and objects[2]["value"] == "0"
        now = datetime.now(UTC).replace(tzinfo=None)
        args = _cli("dlms", "profile", *common, "--from", (now - timedelta(hours=2)).isoformat(),
                    "--to", now.isoformat())
        assert args.func(args) == 0, capsys.readouterr().err
        rows = json.loads(capsys.readouterr().out)["rows"]
        assert len(rows) in (5, 6)  # 4 quarters before the start and the current one (+1 if a
        assert rows[-1]["values"][0]["unit"] == "Wh"  # quarter began during the test)


async def test_a_meter_clock_off_by_more_than_the_limit_is_an_event(tmp_path: Path) -> None:
    clock = FakeClock()
    objects = SimObjects(clock.wall_ms)
    objects.clock_offset_ms = 95_000  # the meter runs 95 s ahead of the gateway
    meter = await TcpMeter(CosemServer(objects)).start()
    events: list[tuple[Any, ...]] = []
    context = Context(open_serial=lambda params: None, events=lambda *e: events.append(e),
                      clock=clock, data_dir=tmp_path)
    assert PLUGIN.open_polled is not None
    opened = PLUGIN.open_polled(Bus(kind="tcp", tcp_port=meter.port), context)
    try:
        await opened.read(Meter(options={"clock_drift_limit_s": 120}))
        assert events == []
        await opened.read(Meter(options={"clock_drift_limit_s": 60}))
        assert events == [("meter_clock_drift", "shop-1", {"drift_s": 95}, "warning")]
    finally:
        await opened.close()
        await meter.stop()
