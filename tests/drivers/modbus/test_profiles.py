"""Profile files: the bundled ones load, malformed ones fail naming file and key."""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from core.quantities import QUANTITIES, base_name
from drivers.errors import ProfileError
from drivers.modbus.profiles import get_profile, load_profiles, profile_names

REQUIRED = {"eastron_sdm120", "eastron_sdm630", "gavazzi_em340", "gavazzi_em24",
            "circutor_cvm_c10", "schneider_iem3155", "abb_b23"}

GOOD = {
    "maker": "Acme", "model": "CT-1", "source": "test", "function": 3, "max_registers": 10,
    "registers": {
        "current_l1": {"address": 0, "type": "int32", "scale": "0.01", "ratio": "ct"},
        "active_power": {"address": 2, "type": "int32", "ratio": "ct*vt"},
        "frequency": {"address": 4, "type": "uint16", "scale": "0.01"},
    },
}


def write(tmp_path: Path, name: str, doc: object) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc))
    return tmp_path


def test_bundled_profiles_load_with_known_quantities() -> None:
    profiles = load_profiles()
    assert set(profiles) >= REQUIRED
    assert profile_names() == sorted(profiles)
    for profile in profiles.values():
        assert 1 <= profile.max_registers <= 125
        for reg in profile.registers:
            assert reg.unit == QUANTITIES[base_name(reg.quantity)]
            assert all(isinstance(span.scale, Decimal) for span in reg.spans)


def test_eastron_quirks_and_serial_defaults() -> None:
    sdm630 = get_profile("eastron_sdm630")
    assert sdm630.even_aligned and sdm630.max_registers == 80
    assert sdm630.inter_request_gap_s == Decimal("0.06")
    assert sdm630.serial.baudrate == 9600 and sdm630.serial.parity == "N"
    assert get_profile("schneider_iem3155").serial.baudrate is None  # not found: not invented
    assert not sdm630.needs_ratios


def test_ratio_profile_needs_ratios(tmp_path: Path) -> None:
    profile = load_profiles(write(tmp_path, "acme_ct1", GOOD))["acme_ct1"]
    assert profile.needs_ratios
    assert [r.ratio for r in profile.registers] == ["ct", "ct*vt", None]


def test_unknown_profile_name_lists_known() -> None:
    with pytest.raises(ProfileError, match="eastron_sdm630"):
        get_profile("no_such_meter")


@pytest.mark.parametrize(("mutate", "key"), [
    (lambda d: d.update(function=5), "'function'"),
    (lambda d: d.update(max_registers=126), "'max_registers'"),
    (lambda d: d.update(colour="red"), "'colour'"),
    (lambda d: d["registers"].update(bogus_quantity={"address": 9, "type": "uint16"}),
     "registers.bogus_quantity"),
    (lambda d: d["registers"]["frequency"].update(scale=0.01), "registers.frequency.scale"),
    (lambda d: d["registers"]["frequency"].update(scale="-1"), "registers.frequency.scale"),
    (lambda d: d["registers"]["frequency"].update(type="float16"), "registers.frequency.type"),
    (lambda d: d["registers"]["frequency"].update(word_order="middle"),
     "registers.frequency.word_order"),
    (lambda d: d["registers"]["frequency"].update(unit="kHz"), "registers.frequency.unit"),
    (lambda d: d["registers"]["frequency"].update(ratio="pt"), "registers.frequency.ratio"),
    (lambda d: d["registers"]["frequency"].update(address=1), "registers."),
    (lambda d: d.update(even_aligned=True), "registers.frequency"),
    (lambda d: d.update(serial={"parity": "X"}), "serial.parity"),
    (lambda d: d.pop("maker"), "'maker'"),
])
def test_malformed_profile_names_file_and_key(tmp_path: Path, mutate, key: str) -> None:
    doc = json.loads(json.dumps(GOOD))
    mutate(doc)
    with pytest.raises(ProfileError) as info:
        load_profiles(write(tmp_path, "broken", doc))
    assert "broken.json" in str(info.value) and key in str(info.value)


def test_invalid_json_names_file(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ProfileError, match=r"bad\.json"):
        load_profiles(tmp_path)
