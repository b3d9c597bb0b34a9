"""The gateway's read of a 102 meter (reader + plugin keys) against the simulated meter, and the
`gateway iec102 decode` command."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from core.quantities import is_known
from core.schema import Problems, validate_table
from drivers.iec102.cli import cmd_decode
from drivers.iec102.plugin import PLUGIN
from drivers.iec102.reader import Iec102Reader, MeterOptions
from drivers.iec102.session import WrongPassword
from drivers.iec102.sim import QUARTER, SimMeter, absolute
from drivers.iec102.simhost import SimStream, TcpSim
from drivers.transport.stream import ByteStream
from drivers.transport.tcp import TcpStream

ORIGIN = dt.datetime(2026, 10, 1)
NOW = dt.datetime(2026, 12, 6, 12, 5, 30)
OPTIONS = MeterOptions(link_address=1, measuring_point=7, password=1234)


def _meter() -> SimMeter:
    return SimMeter(1, 7, 1234, ORIGIN, lambda: NOW)


def _reader(meter: SimMeter) -> Iec102Reader:
    async def open_stream() -> ByteStream:
        return SimStream(meter)
    return Iec102Reader(open_stream, name="line")


async def test_read_maps_totals_and_tariffs_exactly() -> None:
    samples = {s.quantity: s for s in await _reader(_meter()).read("m1", OPTIONS, 0.1)
               if s.at_ms is None}   # the values read now (records: test_records.py)
    quarters = (dt.datetime(2026, 12, 6, 12) - ORIGIN) // QUARTER
    assert samples["import_active_energy"].value == Decimal(absolute(1, quarters))
    assert samples["reactive_energy_q1"].value == Decimal(absolute(3, quarters))
    assert samples["reactive_energy_q4"].value == Decimal(absolute(6, quarters))
    assert samples["export_active_energy"].value == Decimal(0)
    now_quarters = (NOW - ORIGIN) // QUARTER
    t1, t2 = samples["import_active_energy_t1"].value, samples["import_active_energy_t2"].value
    assert isinstance(t1, Decimal) and isinstance(t2, Decimal)
    assert t1 + t2 == Decimal(absolute(1, now_quarters))
    assert samples["max_demand_active_power_t1"].value == Decimal(42000)
    assert samples["meter_datetime"].value == "2026-12-06T12:05:30+01:00"
    assert all(is_known(q) for q in samples)


async def test_wrong_password_is_counted() -> None:
    reader = _reader(_meter())
    with pytest.raises(WrongPassword):
        await reader.read("m1", MeterOptions(1, 7, 99), 0.1)
    assert reader.counters("m1")["password_refused"] == 1
    assert PLUGIN.counters.typed(reader.counters("m1"))["other"] == 1


async def test_read_over_tcp() -> None:
    sim = await TcpSim.start(_meter())

    async def open_stream() -> ByteStream:
        return await TcpStream.connect("127.0.0.1", sim.port, protocol="iec102", timeout_s=5)
    try:
        samples = await Iec102Reader(open_stream, name="tcp").read("m1", OPTIONS, 1.0)
    finally:
        await sim.close()
    assert any(s.quantity == "import_active_energy" for s in samples)


def test_plugin_keys() -> None:
    problems = Problems("test.toml")
    validate_table({"address": 1, "password": 70000, "contract": 4}, PLUGIN.meter_fields,
                   "meter[0]", problems)
    assert problems
    assert PLUGIN.name == "iec102" and PLUGIN.transports == frozenset({"serial", "tcp"})


def test_decode_command(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse
    frame = "68 0D 0D 68 73 01 00 B7 01 06 01 00 00 07 00 00 00 3A 16"
    assert cmd_decode(argparse.Namespace(frame=frame, tz="Europe/Madrid")) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["link"]["function_name"] == "send_confirm" and document["link"]["fcb"]
    assert document["asdu"]["type_name"] == "C_AC_NA_2"
    assert document["asdu"]["cause_name"] == "activation"
    assert document["asdu"]["objects"] == [{"password": "7"}]
    assert cmd_decode(argparse.Namespace(frame=frame[:-5] + "00 16", tz="UTC")) == 1


async def test_meter_events_go_on_once_and_clock_drift_is_reported() -> None:
    from drivers.iec102.objects import Event
    from drivers.iec102.timetags import TimeB

    meter = _meter()
    meter.events = [Event(3, 1, True, TimeB.of(NOW - dt.timedelta(hours=2))),
                    Event(3, 1, False, TimeB.of(NOW - dt.timedelta(hours=1))),
                    Event(1, 2, False, TimeB.of(NOW - dt.timedelta(days=3)))]   # before the window
    seen: list[tuple[str, str | None, dict[str, object], str]] = []
    gateway_ms = int(NOW.replace(tzinfo=dt.timezone(dt.timedelta(hours=1))).timestamp() * 1000)

    async def open_stream() -> ByteStream:
        return SimStream(meter)
    reader = Iec102Reader(open_stream, name="line", wall_ms=lambda: gateway_ms + 120_000,
                          events=lambda *event: seen.append(event))
    options = MeterOptions(1, 7, 1234, event_records=(52,))
    await reader.read("m1", options, 0.1)
    await reader.read("m1", options, 0.1)
    meter_events = [e for e in seen if e[0] == "meter_event"]
    assert [(e[2]["group"], e[2]["spi"]) for e in meter_events] == [(3, True), (3, False)]
    assert meter_events[0][2]["time"] == "2026-12-06T10:05:30+01:00"
    drifts = [e for e in seen if e[0] == "meter_clock_drift"]
    assert len(drifts) == 2 and drifts[0][2] == {"drift_s": -120} and drifts[0][3] == "warning"
