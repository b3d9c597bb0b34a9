"""The `writable` section of a profile: validated at load (each mistake names its key), and
the value -> words of a write (range, type, scale, exact float32)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import ProfileError
from drivers.modbus.profiles import get_profile, load_profile_file
from drivers.modbus.writable import Writable, find_writable

BASE: dict[str, Any] = {
    "maker": "Test", "model": "W", "source": "test", "function": 3, "max_registers": 10,
    "registers": {"frequency": {"address": 0, "type": "uint16", "scale": "0.01"}},
}


def _named(items: tuple[Writable, ...], name: str) -> Writable:
    found = find_writable(items, name)
    assert found is not None, name
    return found


def _load(tmp_path: Path, writable: Any) -> Any:
    path = tmp_path / "w.json"
    path.write_text(json.dumps({**BASE, "writable": writable}), encoding="utf-8")
    return load_profile_file(path)


def test_the_bundled_sdm630_declares_its_demand_period_and_pulse_width() -> None:
    items = get_profile("eastron_sdm630").writable
    period = find_writable(items, "demand_period")
    assert period is not None and period.span.address == 2 and period.span.dtype == "float32"
    assert (period.low, period.high, period.readback) == (Decimal(0), Decimal(60), True)
    assert find_writable(items, "12") is find_writable(items, "relay_pulse_width")
    assert find_writable(items, "0x0c") is find_writable(items, "relay_pulse_width")
    assert find_writable(items, "4") is None and find_writable(items, "voltage_l1") is None


def test_a_profile_without_the_section_writes_nothing() -> None:
    assert get_profile("abb_b23").writable == ()


@pytest.mark.parametrize(("writable", "key"), [
    ([], "'writable'"),
    ({"ct": {"address": 10, "type": "uint16", "min": "1", "max": "9", "colour": 1}},
     "writable.ct.colour"),
    ({"ct": {"address": 10, "type": "int8", "min": "1", "max": "9"}}, "writable.ct.type"),
    ({"ct": {"address": 65535, "type": "uint32", "min": "1", "max": "9"}}, "writable.ct.address"),
    ({"ct": {"address": 10, "type": "uint16", "min": 1.5, "max": "9"}}, "writable.ct.min"),
    ({"ct": {"address": 10, "type": "uint16", "min": "9", "max": "1"}}, "writable.ct.min"),
    ({"ct": {"address": 10, "type": "uint16", "min": "0", "max": "70000"}}, "writable.ct.max"),
    ({"ct": {"address": 10, "type": "uint16", "min": "0", "max": "9", "readback": "yes"}},
     "writable.ct.readback"),
    ({"CT": {"address": 10, "type": "uint16", "min": "0", "max": "9"}}, "writable.CT"),
    ({"a": {"address": 10, "type": "uint32", "min": "0", "max": "9"},
      "b": {"address": 11, "type": "uint16", "min": "0", "max": "9"}}, "writable.b"),
    ({"ct": {"address": 10, "type": "uint16", "min": "0", "max": "9", "scale": "0"}},
     "writable.ct.scale"),
])
def test_a_wrong_section_names_the_key(tmp_path: Path, writable: Any, key: str) -> None:
    with pytest.raises(ProfileError, match=key.replace(".", r"\.")):
        _load(tmp_path, writable)


def test_range_type_and_scale_decide_what_may_be_written(tmp_path: Path) -> None:
    profile = _load(tmp_path, {
        "ct_ratio": {"address": 10, "type": "uint16", "min": "1", "max": "5000"},
        "reset_demand": {"address": 20, "type": "uint16", "min": "0", "max": "0",
                         "readback": False, "multiple": True},
        "clock_trim": {"address": 30, "type": "int32", "scale": "0.1", "min": "-10",
                       "max": "10", "word_order": "little"},
    })
    ct = _named(profile.writable, "ct_ratio")
    assert ct.request(Decimal("400")).words == (400,) and ct.request(Decimal(1)).function == 6
    reset = _named(profile.writable, "reset_demand")
    assert reset.request(Decimal(0)).function == 16 and not reset.readback
    trim = _named(profile.writable, "clock_trim")
    assert trim.request(Decimal("-0.5")).words == (0xFFFB, 0xFFFF)
    for register, value in ((ct, "0"), (ct, "5001"), (ct, "1.5"), (trim, "0.05")):
        with pytest.raises(ValueError):
            register.request(Decimal(value))


@given(st.integers(0, 60))
def test_every_whole_minute_round_trips_through_the_float32_demand_period(minutes: int) -> None:
    period = _named(get_profile("eastron_sdm630").writable, "demand_period")
    req = period.request(Decimal(minutes))
    assert period.value_of(list(req.words)) == minutes


def test_a_float32_value_that_would_read_back_as_another_is_refused() -> None:
    period = _named(get_profile("eastron_sdm630").writable, "demand_period")
    assert period.value_of(list(period.request(Decimal("15.1")).words)) == Decimal("15.1")
    with pytest.raises(ValueError, match="float32"):
        period.request(Decimal("15.000000001"))  # the nearest float32 reads back as 15
