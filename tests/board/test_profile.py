"""Board profiles: shipped files load, and every malformed document is a BoardError naming it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from board.interface import BoardError
from board.profile import SysfsLed, available_profiles, load_profile, parse_profile

VALID: dict[str, Any] = {
    "name": "t",
    "chip": "/dev/gpiochip0",
    "outputs": {"relay1": {"line": 26, "active_low": True}},
    "inputs": {"in1": {"line": 16, "bias": "pull_up"}},
    "leds": {"status": {"sysfs": "/sys/class/leds/ACT"}},
    "modem_power": {"line": 23, "off_s": 5},
}


def test_shipped_profiles_load() -> None:
    names = available_profiles()
    assert "waveshare-rpi-relay-board" in names
    for name in names:
        assert load_profile(name).name == name


def test_waveshare_pins_match_vendor_wiki() -> None:
    profile = load_profile("waveshare-rpi-relay-board")
    assert {n: (p.line, p.active_low) for n, p in profile.outputs.items()} == {
        "relay1": (26, True), "relay2": (20, True), "relay3": (21, True)}
    assert isinstance(profile.leds["status"], SysfsLed)


def test_profile_by_path_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(VALID))
    assert load_profile(path).modem_power is not None
    with pytest.raises(BoardError, match="not found"):
        load_profile("no-such-board")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(BoardError, match=r"bad\.json"):
        load_profile(bad)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("outputs", "relay1", "line"), -1, "outputs.relay1.line"),
        (("outputs", "relay1", "colour"), "red", "unknown key outputs.relay1.colour"),
        (("inputs", "in1", "bias"), "strong", "inputs.in1.bias"),
        (("inputs", "in1", "line"), 26, "already used by outputs.relay1"),
        (("leds", "status", "sysfs"), "/tmp/x", "leds.status.sysfs"),
        (("modem_power", "off_s"), 600, "modem_power.off_s"),
        (("chip",), "", "chip"),
        (("extra",), 1, "unknown key extra"),
    ],
)
def test_bad_profile_names_the_key(path: tuple[str, ...], value: Any, message: str) -> None:
    doc = copy.deepcopy(VALID)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(BoardError, match=message):
        parse_profile(doc, source="mem.json")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 100) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(doc=json_values | st.fixed_dictionaries({"name": st.just("x"), "chip": st.just("/c"),
                                               "outputs": json_values, "inputs": json_values}))
def test_fuzzed_profiles_raise_only_board_errors(doc: Any) -> None:
    try:
        parse_profile(doc, source="fuzz.json")
    except BoardError as exc:
        assert "fuzz.json" in str(exc)
