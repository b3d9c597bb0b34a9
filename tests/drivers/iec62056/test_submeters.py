"""DSMR M-Bus sub-meters (gas, water, heat on channels 1..4): each value with the capture time
the sub-meter gave (in UTC, S/W flag kept), its equipment id, and exact units."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import serial
from hypothesis import example, given, settings
from hypothesis import strategies as st

from drivers.iec62056.datasets import DataSet, DataValue, parse_block
from drivers.iec62056.p1 import P1Port
from drivers.iec62056.readout import decode_message, encode_telegram
from drivers.iec62056.sim import P1Sim
from drivers.iec62056.submeters import map_submeters
from tests.corpus import CORPUS

TELEGRAMS = json.loads((CORPUS / "iec62056/dsmr_telegrams.json").read_text())
ISKRA = decode_message(TELEGRAMS[0]["telegram"].encode("latin-1"))
CET = 60


def _entry(marker: str) -> tuple[DataSet, ...]:
    entry = next(e for e in TELEGRAMS if marker in e["source"] or marker in e["version"])
    return decode_message(entry["telegram"].encode("latin-1")).datasets


def _ms(utc: datetime) -> int:
    return (utc - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def test_gas_meter_keeps_its_capture_time_and_equipment_id() -> None:
    (gas,), errors = map_submeters(_entry("ZIV 5CTA3"), CET)  # 0-1:24.2.1(230925160000S)
    assert errors == []
    assert gas.channel == 1 and gas.device_type == 3 and gas.dst is True
    assert gas.captured_utc == datetime(2023, 9, 25, 14, 0, tzinfo=UTC)
    assert gas.ts_ms == _ms(datetime(2023, 9, 25, 14, 0, tzinfo=UTC))
    values = {s.quantity: (s.value, s.unit) for s in gas.samples}
    assert values == {"volume": (Decimal("4611.403"), "m3"),
                      "meter_datetime": ("2023-09-25T16:00:00+02:00", ""),
                      "serial_number": ("G0072004001819220", "")}


def test_winter_capture_time() -> None:
    (gas,), _ = map_submeters(_entry("LANDIS_GIR_ZCF100"), CET)  # 161116200000W
    assert gas.captured_utc == datetime(2016, 11, 16, 19, 0, tzinfo=UTC) and gas.dst is False


def test_gas_and_water_on_two_channels() -> None:
    readings, errors = map_submeters(_entry("FLUVIUS_V171"), CET)
    assert errors == []
    by_channel = {r.channel: r for r in readings}
    assert by_channel[1].samples[0].value == Decimal("112.384")  # e-MUCS 24.2.3 gas
    assert by_channel[2].device_type == 7  # water
    assert by_channel[2].samples[0].value == Decimal("872.234")


def test_heat_in_gigajoules_is_stored_in_kilowatt_hours_to_the_watt_hour() -> None:
    (heat,), _ = map_submeters(_entry("Warmtelink"), CET)  # 240.860 GJ
    assert heat.device_type == 4
    assert (heat.samples[0].quantity, heat.samples[0].unit) == ("heat_energy", "kWh")
    assert heat.samples[0].value == Decimal("66905.556")  # 240.860e9 J / 3.6e6, to 1 Wh


def test_empty_channel_placeholder_is_refused_not_stored() -> None:
    readings, errors = map_submeters(_entry("TWO_MBUS"), CET)  # ch 1: (700101010000W)(00000000)
    assert [r.channel for r in readings] == [2]
    assert [e.address for e in errors] == ["0-1:24.2.1"]
    assert "unit" in str(errors[0])


def test_only_the_wanted_channels_are_looked_at() -> None:
    readings, errors = map_submeters(_entry("TWO_MBUS"), CET, channels={2})
    assert [r.channel for r in readings] == [2] and errors == []
    assert map_submeters(_entry("TWO_MBUS"), CET, channels=set()) == ([], [])


def test_capture_time_without_flag_or_value_out_of_range_is_refused() -> None:
    sets, _ = parse_block("0-1:24.2.1(230925160000)(00001.000*m3)\r\n"
                          f"0-2:24.2.1(230925160000S)({'9' * 40}*m3)\r\n"
                          "0-3:24.2.1(230925160000S)\r\n"
                          "0-4:24.2.1(230925160000S)(00001.000*m3)\r\n")
    readings, errors = map_submeters(sets, CET)
    assert [r.channel for r in readings] == [4]
    assert [e.address for e in errors] == ["0-1:24.2.1", "0-2:24.2.1", "0-3:24.2.1"]


async def test_p1_port_yields_sub_meters_over_a_pty() -> None:
    raw = next(e for e in TELEGRAMS if "ZIV 5CTA3" in e["version"])["telegram"].encode("latin-1")
    with P1Sim([raw], interval_s=0.05) as sim:
        port = serial.Serial(sim.port_path, 115200, timeout=0)
        p1 = P1Port(port, "p1-test", meter="home-1", channels={1})
        telegram = await anext(aiter(p1.telegrams()))
        port.close()
    (gas,) = telegram.submeters
    assert gas.ts_ms == _ms(datetime(2023, 9, 25, 14, 0, tzinfo=UTC))
    assert p1.counters["dataset_errors"] == 0


volumes = st.builds(lambda whole, frac: f"{whole:05d}.{frac:03d}",
                    st.integers(0, 10**12), st.integers(0, 999))


@settings(max_examples=150, deadline=None)
@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2068, 12, 1)),
       st.booleans(), st.integers(1, 4), volumes)
@example(datetime(2020, 10, 25, 0, 30), True, 1, "04611.403")  # the repeated autumn hour
@example(datetime(2020, 10, 25, 1, 30), False, 1, "04611.403")
def test_any_sub_meter_value_behind_a_valid_crc_keeps_value_and_instant(
    utc: datetime, dst: bool, channel: int, volume: str,
) -> None:
    instant = utc.replace(microsecond=0, tzinfo=UTC)
    local = instant + timedelta(minutes=CET + (60 if dst else 0))
    stamp = local.strftime("%y%m%d%H%M%S") + ("S" if dst else "W")
    sets = [*ISKRA.datasets[:5],
            DataSet(f"0-{channel}:24.1.0", (DataValue("003"),)),
            DataSet(f"0-{channel}:24.2.1", (DataValue(stamp), DataValue(volume, "m3")))]
    assert ISKRA.identification is not None
    telegram = P1Port(None, "prop")._decode(encode_telegram(ISKRA.identification, sets))
    assert telegram is not None
    (reading,) = telegram.submeters
    assert reading.channel == channel and reading.dst is dst
    assert reading.ts_ms == _ms(instant)
    assert reading.samples[0].value == Decimal(volume)


def test_one_reading_per_capture_not_per_telegram() -> None:
    raw = next(e for e in TELEGRAMS if "ZIV 5CTA3" in e["version"])["telegram"].encode("latin-1")
    later = decode_message(raw.replace(b"(230925160000S)(04611.403", b"(230925170000S)(04611.9"))
    assert later.identification is not None
    p1 = P1Port(None, "p1-test")
    first, repeated = p1._decode(raw), p1._decode(raw)
    fresh = p1._decode(encode_telegram(later.identification, later.datasets))
    assert first is not None and repeated is not None and fresh is not None
    assert len(first.submeters) == 1 and repeated.submeters == ()
    assert [s.samples[0].value for s in fresh.submeters] == [Decimal("4611.9")]
