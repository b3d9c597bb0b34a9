"""The mbus plugin's keys and addresses, and `gateway mbus scan|read|decode` (the JSON shape of
`gateway wmbus decode`), the commands run against the simulated bus on a pty."""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import serial
from hypothesis import given
from hypothesis import strategies as st

from core.clock import SystemClock
from core.quantities import QUANTITIES, base_name, is_known
from core.schema import Problems, validate_table
from drivers.errors import DriverError, FrameError
from drivers.mbus_wired.address import SecondaryAddress
from drivers.mbus_wired.cli import decode_hex, register
from drivers.mbus_wired.meter_address import (
    address_check,
    parse_meter_address,
    secondary_hex,
)
from drivers.mbus_wired.plugin import PLUGIN
from drivers.mbus_wired.readout import readout_samples
from drivers.mbus_wired.responses import decode_rsp_ud
from drivers.mbus_wired.sim import SimBus
from drivers.mbus_wired.simpty import BusSim, load_frames, meters_from_frames
from drivers.plugin import Context, SerialParams
from drivers.readings import Sample
from gateway.config.loader import ConfigError, load_config
from tests.corpus import CORPUS

FRAMES = load_frames(CORPUS / "mbus" / "frames.json")
RECORD_KEYS = {"storage", "tariff", "subunit", "function", "quantity", "unit", "value",
               "modifiers"}


@given(st.integers(0, 10**8 - 1), st.integers(0, 0xFFFF), st.integers(0, 255),
       st.integers(0, 255))
def test_secondary_address_text_round_trips(number: int, maker: int, version: int,
                                            medium: int) -> None:
    address = SecondaryAddress(f"{number:08d}", maker, version, medium)
    text = secondary_hex(address)
    assert parse_meter_address(text) == address
    assert parse_meter_address(text.lower()) == address


def test_address_forms() -> None:
    assert secondary_hex(SecondaryAddress("12345678", 0x32A7, 1, 7)) == "12345678A7320107"
    assert parse_meter_address(0) == 0 and parse_meter_address("250") == 250
    assert address_check(251) == "primary address 251 is not 0-250"
    assert "decimal digits only" in (address_check("1234567FA7320107") or "")  # no wildcard meter
    assert "16 hex digits" in (address_check("12345678A73201") or "")
    assert address_check(True) is not None


def test_meter_keys_are_validated_with_the_rest() -> None:
    problems = Problems("gateway.toml")
    validate_table({"address": "12345678A7320107", "baud": 1200, "max_telegrams": 99,
                    "select_data": 300, "clockSync": True}, PLUGIN.meter_fields, "meter[0]",
                   problems)
    text = "\n".join(problems.lines)
    assert "baud" in text and "max_telegrams" in text and "select_data" in text
    assert "clockSync" in text
    assert "meter[0].address" not in text


def test_counters_sum_into_the_standard_four() -> None:
    typed = PLUGIN.counters.typed({"reads_ok": 4, "timeouts": 1, "e5_missing": 2,
                                   "checksum": 1, "collisions": 3, "telegrams": 8})
    assert (typed["ok"], typed["timeouts"], typed["checksum"], typed["other"]) == (4, 3, 1, 3)
    assert typed["collisions"] == 3


def test_decode_prints_the_wmbus_decode_shape() -> None:
    document = decode_hex(FRAMES["libmbus/abb_f95"].hex())
    assert (document["manufacturer"], document["id"], document["device_type"]) == (
        "HYD", "26718590", 4)
    assert document["access_number"] == 115 and document["status"] == 0x50
    assert all(set(record) >= RECORD_KEYS for record in document["records"])
    volume = next(r for r in document["records"] if r["quantity"] == "volume")
    assert (volume["value"], volume["unit"], volume["storage"]) == ("0.0742", "m3", 0)
    assert {"quantity": "volume", "value": "0.0742", "unit": "m3"} in document["samples"]


def test_decode_refuses_garbage_with_a_reason() -> None:
    with pytest.raises(ValueError, match="hex"):
        decode_hex("zz")
    with pytest.raises(FrameError, match=r"checksum"):
        decode_hex("68 03 03 68 08 01 72 00 16")


def _parser() -> argparse.ArgumentParser:
    def open_port(port: str) -> Callable[[SerialParams], Any]:
        return lambda p: serial.Serial(port, p.baudrate, parity=p.parity, timeout=0)
    parser = argparse.ArgumentParser(prog="gateway")
    register(parser.add_subparsers(dest="command"), open_port)
    return parser


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return int(args.func(args))


def test_cli_scan_and_read_against_the_simulated_bus(capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    meters = meters_from_frames([[FRAMES["libmbus/abb_f95"]], [FRAMES["libmbus/tecson"]]], 3,
                                seed=11, primaries=True)
    with BusSim(SimBus(meters), paced=False) as sim:
        assert _run(["mbus", "scan", "--port", sim.port_path, "--secondary"]) == 0
        sim.reset_line()   # a pty refuses 8E1 again at the same baud (see reset_line)
        found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert sorted(f["address"] for f in found) == sorted(
            secondary_hex(m.secondary) for m in meters)
        assert _run(["mbus", "scan", "--port", sim.port_path, "--last", "5"]) == 0
        assert [json.loads(x)["address"] for x in capsys.readouterr().out.splitlines()] == [
            1, 2, 3]
        sim.reset_line()
        assert _run(["mbus", "read", "--port", sim.port_path, "--address",
                     secondary_hex(meters[1].secondary)]) == 0
        read = json.loads(capsys.readouterr().out)
    assert {"quantity": "volume", "value": "45.60", "unit": "m3"} in read["samples"]
    assert read["telegrams"][0]["id"] == meters[1].secondary.id


def test_cli_read_of_a_bad_address_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["mbus", "read", "--port", "/dev/null", "--address", "nine"]) == 1
    assert "16 hex digits" in json.loads(capsys.readouterr().err)["error"]


async def test_the_plugin_opens_reads_counts_and_scans_a_configured_bus(tmp_path: Path) -> None:
    meters = meters_from_frames([[FRAMES["libmbus/abb_f95"]], [FRAMES["libmbus/tecson"]]], 4,
                                seed=12, primaries=True)
    with BusSim(SimBus(meters), paced=False) as sim:
        config = tmp_path / "gateway.toml"
        config.write_text(textwrap.dedent(f"""
            gateway_id = "gw-test"
            [storage]
            path = "{tmp_path / 'gw.db'}"
            [[bus]]
            id = "riser"
            port = "{sim.port_path}"
            baudrate = 2400
            attempts = 1
            [[meter]]
            id = "by-secondary"
            bus = "riser"
            protocol = "mbus"
            address = "{secondary_hex(meters[0].secondary).lower()}"
            [[meter]]
            id = "by-primary"
            bus = "riser"
            protocol = "mbus"
            address = 2
        """))
        loaded = load_config(config)
        assert PLUGIN.open_polled is not None and PLUGIN.scan is not None
        context = Context(open_serial=lambda p: serial.Serial(p.port, p.baudrate,
                                                              parity=p.parity, timeout=0),
                          events=lambda *_: None, clock=SystemClock(), data_dir=tmp_path)
        opened = PLUGIN.open_polled(loaded.buses[0], context)
        try:
            first, second = loaded.meters
            assert Sample("volume", Decimal("0.0742"), "m3") in await opened.read(first)
            assert Sample("volume", Decimal("45.60"), "m3") in await opened.read(second)
            found = await PLUGIN.scan.run(opened, loaded.meters, 60)
        finally:
            await opened.close()
    assert PLUGIN.counters.typed(opened.counters("by-primary"))["ok"] == 1
    assert sorted(f.address for f in found) == sorted(secondary_hex(m.secondary) for m in meters)
    assert any(f"primary {m.primary}" in f.description for f in found for m in meters)


def test_duplicate_addresses_however_written_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(textwrap.dedent(f"""
        gateway_id = "gw-test"
        [storage]
        path = "{tmp_path / 'gw.db'}"
        [[bus]]
        id = "riser"
        port = "/dev/ttyUSB0"
        [[meter]]
        id = "a"
        bus = "riser"
        protocol = "mbus"
        address = "12345678A7320107"
        [[meter]]
        id = "b"
        bus = "riser"
        protocol = "mbus"
        address = "12345678a7320107"
        [[meter]]
        id = "c"
        bus = "riser"
        protocol = "mbus"
        address = 251
    """))
    with pytest.raises(ConfigError) as info:
        load_config(config)
    text = str(info.value)
    assert "12345678A7320107 is also meter 'a'" in text and "251 is not 0-250" in text


def test_every_corpus_sample_is_a_core_quantity_in_its_unit() -> None:
    samples = []
    for frame in FRAMES.values():
        try:
            samples += readout_samples([decode_rsp_ud(frame)])[0]
        except DriverError:
            continue   # refused frames: test_corpus.py lists them
    assert len(samples) > 200
    for sample in samples:
        assert is_known(sample.quantity), sample
        assert QUANTITIES[base_name(sample.quantity)] == sample.unit, sample
