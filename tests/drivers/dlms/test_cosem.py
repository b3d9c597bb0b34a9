"""COSEM objects and meter profiles: scaler_unit -> exact values, clock, profile generic rows,
disconnect control, the three push layouts (Aidon synthetic, Kamstrup and Kaifa from the
corpus), samples in the gateway's units."""

from __future__ import annotations

from decimal import Decimal

import pytest

from drivers.dlms.axdr import Data, Tag, decode_data, encode_data
from drivers.dlms.cosem import (
    CaptureObject,
    ObjectValue,
    ScalerUnit,
    clock_time,
    disconnect_state,
    obis_bytes,
    obis_text,
    profile_rows,
    register_value,
    scaled,
)
from drivers.dlms.push import choose_profile, profiles, push_objects, samples
from drivers.dlms.timefields import decode_date_time
from drivers.errors import FrameError, ProfileError
from drivers.readings import Sample


def _su(scaler: int, unit: int) -> Data:
    return Data(Tag.STRUCTURE, (Data(Tag.INTEGER, scaler), Data(Tag.ENUM, unit)))


def _name(text: str) -> Data:
    return Data(Tag.OCTET_STRING, obis_bytes(text))


def test_obis_text_round_trip() -> None:
    assert obis_text(bytes.fromhex("0100010800FF")) == "1-0:1.8.0.255"
    assert obis_bytes("1-0:1.8.0.255") == bytes.fromhex("0100010800FF")
    with pytest.raises(ValueError):
        obis_bytes("1.8.0")


def test_register_value_is_exact() -> None:
    unit = ScalerUnit.from_data(_su(-2, 30))
    assert unit == ScalerUnit(-2, "Wh")
    value = register_value("1-0:1.8.0.255", Data(Tag.DOUBLE_LONG_UNSIGNED, 123456789), unit)
    assert value == ObjectValue("1-0:1.8.0.255", Decimal("1234567.89"), "Wh", -2)
    assert str(value.value) == "1234567.89"
    assert register_value("0-0:96.1.0.255", Data(Tag.OCTET_STRING, b"A123"), None).value == "A123"
    assert str(scaled(5, 3)) == "5000" and str(scaled(5, -3)) == "0.005"
    with pytest.raises(FrameError):
        scaled(5, 100)
    with pytest.raises(FrameError):
        ScalerUnit.from_data(_su(0, 99))


def test_clock_and_disconnect() -> None:
    raw = bytes.fromhex("07E30C130402000000FFC400")
    assert clock_time(Data(Tag.OCTET_STRING, raw)) == decode_date_time(raw)
    assert disconnect_state(Data(Tag.ENUM, 2)) == "ready_for_reconnection"
    with pytest.raises(FrameError):
        disconnect_state(Data(Tag.ENUM, 7))


def _capture(class_id: int, obis: str, attribute: int) -> Data:
    return Data(Tag.STRUCTURE, (Data(Tag.LONG_UNSIGNED, class_id), _name(obis),
                                Data(Tag.INTEGER, attribute), Data(Tag.LONG_UNSIGNED, 0)))


def test_profile_generic_rows_are_dated() -> None:
    capture = [CaptureObject.from_data(_capture(8, "0-0:1.0.0.255", 2)),
               CaptureObject.from_data(_capture(3, "1-0:1.8.0.255", 2))]
    stamp = bytes.fromhex("07E30C130402000000FFC400")
    rows = Data(Tag.ARRAY, (
        Data(Tag.STRUCTURE, (Data(Tag.OCTET_STRING, stamp), Data(Tag.DOUBLE_LONG_UNSIGNED, 1517))),
        Data(Tag.STRUCTURE, (Data(Tag.NULL), Data(Tag.DOUBLE_LONG_UNSIGNED, 1518)))))
    buffer = decode_data(encode_data(rows))
    out = profile_rows(capture, buffer, {"1-0:1.8.0.255": ScalerUnit(1, "Wh")})
    assert out[0].when_text == "2019-12-19T02:00:00+01:00"
    assert out[0].values == (ObjectValue("1-0:1.8.0.255", Decimal("1.517E+4"), "Wh", 1,
                                         "2019-12-19T02:00:00+01:00"),)
    assert out[1].when is None
    with pytest.raises(FrameError):
        profile_rows(capture[:1], buffer, {})


def test_aidon_self_describing_list() -> None:
    body = Data(Tag.ARRAY, (
        Data(Tag.STRUCTURE, (_name("1-1:0.2.129.255"), Data(Tag.VISIBLE_STRING, "AIDON_V0001"))),
        Data(Tag.STRUCTURE, (_name("1-0:1.7.0.255"), Data(Tag.DOUBLE_LONG_UNSIGNED, 1830),
                             _su(0, 27))),
        Data(Tag.STRUCTURE, (_name("1-0:31.7.0.255"), Data(Tag.LONG, 61), _su(-1, 33))),
        Data(Tag.STRUCTURE, (_name("1-0:32.7.0.255"), Data(Tag.LONG_UNSIGNED, 2310),
                             _su(-1, 35))),
        Data(Tag.STRUCTURE, (_name("1-0:1.8.0.255"), Data(Tag.DOUBLE_LONG_UNSIGNED, 1234567),
                             _su(1, 30)))))
    profile = choose_profile(body)
    assert profile is not None and profile.make == "Aidon"
    objects = push_objects(body, profile)
    assert [o.value for o in objects] == ["AIDON_V0001", 1830, Decimal("6.1"), Decimal("231.0"),
                                          Decimal("1.234567E+7")]
    assert samples(objects) == [
        Sample("active_power", Decimal(1830), "W"), Sample("current_l1", Decimal("6.1"), "A"),
        Sample("voltage_l1", Decimal("231.0"), "V"),
        Sample("import_active_energy", Decimal("12345.67"), "kWh")]


def test_profiles_load_and_name_their_list_ids() -> None:
    loaded = profiles()
    assert set(loaded) == {"aidon", "kaifa", "kamstrup"}
    assert loaded["kaifa"].list_ids == ("KFM_001",)
    assert all(len(codes) == n for n, codes in loaded["kaifa"].lists.items())
    with pytest.raises(ProfileError):
        choose_profile(Data(Tag.ARRAY, ()), "landis")


def test_positional_list_needs_its_profile() -> None:
    body = Data(Tag.STRUCTURE, (Data(Tag.UNSIGNED, 1), Data(Tag.UNSIGNED, 2)))
    with pytest.raises(FrameError, match="profile"):
        push_objects(body, None)
    with pytest.raises(FrameError, match="no list of 2"):
        push_objects(body, profiles()["kaifa"])
    assert push_objects(Data(Tag.OCTET_STRING, b"\x01"), None) == []


def test_a_value_without_unit_is_no_sample() -> None:
    assert samples([ObjectValue("1-0:1.8.0.255", Decimal(5))]) == []
    assert samples([ObjectValue("1-0:1.8.0.255", Decimal(5), "Wh", 0)]) == [
        Sample("import_active_energy", Decimal("0.005"), "kWh")]
    assert samples([ObjectValue("1-0:1.8.0.1", Decimal(5), "Wh", 0)]) == []  # historic


def test_samples_keep_numbers_and_texts_apart() -> None:
    # found by make fuzz: a time value where the Kaifa list 1 has its power
    with pytest.raises(FrameError, match="not a number"):
        samples([ObjectValue("1-0:1.7.0.255", "00:00:02.59")])
    assert samples([ObjectValue("0-0:96.1.0.255", Decimal(1234))]) == [
        Sample("serial_number", "1234", "")]


def test_extended_register_keeps_its_capture_time() -> None:
    stamp = Data(Tag.OCTET_STRING, bytes.fromhex("07E30C130402000000FFC400"))
    value = register_value("1-0:1.6.0.255", Data(Tag.DOUBLE_LONG_UNSIGNED, 4210),
                           ScalerUnit(0, "W"), stamp)
    assert value.captured == "2019-12-19T02:00:00+01:00"
    assert value.to_json()["captured"] == "2019-12-19T02:00:00+01:00"
    assert samples([value]) == [Sample("max_demand_active_power", Decimal(4210), "W")]
