"""Editing one TOML key in place: other lines and comments survive, bad input is refused."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.console.config_edit import ConfigEditError, set_value

CONFIG = """\
gateway_id = "gw-7"   # site: Market street 4

[storage]
path = "/var/lib/gateway/db.sqlite"

[uplink]
host = "old.example.net"
port = 8883

[[meter]]
id = "shop-12"
address = 12

[[meter]]
id = "shop-14"
address = 14

[console]
idle_logout_s = 600
"""


def test_replace_keeps_comments_and_other_keys() -> None:
    text = set_value(CONFIG, "uplink.host", '"new.example.net"')
    assert '# site: Market street 4' in text
    data = tomllib.loads(text)
    assert data["uplink"] == {"host": "new.example.net", "port": 8883}
    assert data["meter"][1]["address"] == 14


def test_array_of_tables_index_and_new_key() -> None:
    text = set_value(CONFIG, "meter[1].address", "15")
    text = set_value(text, "meter[0].baudrate", "9600")
    data = tomllib.loads(text)
    assert [m["address"] for m in data["meter"]] == [12, 15]
    assert data["meter"][0]["baudrate"] == 9600
    assert "baudrate" not in data["meter"][1]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("uplink.host", "new.example.net", "not a TOML value"),
    ("nosuch.key", "1", "no table"),
    ("meter[5].address", "1", "no table"),
    ("gateway_id", '"x"', "top-level"),
    ("uplink..host", "1", "not a key"),
    ("uplink.host", '"a"\nport = 1', "not a TOML value"),
])
def test_bad_keys_and_values_are_refused(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigEditError, match=message):
        set_value(CONFIG, key, value)


@settings(max_examples=60, deadline=None)
@given(st.integers(-2**40, 2**40) | st.text(max_size=30) | st.booleans())
def test_any_value_round_trips(value: object) -> None:
    literal = str(value).lower() if isinstance(value, bool) else (
        repr(value) if isinstance(value, int) else '"' + str(value).encode(
            "unicode_escape").decode().replace('"', '\\"') + '"')
    try:
        text = set_value(CONFIG, "console.idle_logout_s", literal)
    except ConfigEditError:
        return  # a literal our quoting could not express: refused, never corrupted
    assert tomllib.loads(text)["console"]["idle_logout_s"] == value
