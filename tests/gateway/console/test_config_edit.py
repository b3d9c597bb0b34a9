"""Editing one TOML key in place: other lines and comments survive, bad input is refused."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.console.config_edit import ConfigEditError, parse_key, set_value, typed_value
from gateway.console.config_keys import expected_types

CONFIG = """\
gateway_id = "gw-7"   # site: Market street 4

[storage]
path = "/var/lib/gateway/db.sqlite"

[log]
level = "info"

[uplink]
broker_url = "mqtt://old.example.net"   # the utility's broker
keepalive_s = 60

[[bus]]
id = "rs485-a"
port = "/dev/ttyUSB0"

[bus.rs485]
enabled = true

[[meter]]
id = "shop-12"
bus = "rs485-a"
protocol = "modbus"
address = 12
profile = "eastron-sdm120"
ct_ratio = "100/5"

[[meter]]
id = "shop-14"
bus = "rs485-a"
protocol = "modbus"
address = 14
profile = "eastron-sdm120"

[prepay]
currency = "EUR"
"""


def typed_set(text: str, key: str, typed: str) -> str:
    """What the console does: the schema says the type, then the one key is set."""
    value = typed_value(typed, expected_types(parse_key(key), tomllib.loads(text)), key)
    return set_value(text, key, value)


def test_replace_keeps_comments_and_other_keys() -> None:
    text = typed_set(CONFIG, "uplink.broker_url", "mqtt://new.example.net")
    assert "# site: Market street 4" in text and "# the utility's broker" in text
    data = tomllib.loads(text)
    assert data["uplink"] == {"broker_url": "mqtt://new.example.net", "keepalive_s": 60}
    assert data["meter"][1]["address"] == 14


@pytest.mark.parametrize(("key", "typed", "expected"), [
    ("log.level", "debug", "debug"),                 # a bare word is text for a text key
    ("log.level", '"warning"', "warning"),           # quotes accepted, not required
    ("meter[0].ct_ratio", "200/5", "200/5"),
    ("meter[0].ct_ratio", "40", 40),                 # int or text: the number wins
    ("prepay.currency", "KES", "KES"),               # type from the value already there
    ("meter[1].address", "15", 15),
    ("bus[0].rs485.enabled", "no", False),           # a table inside an array of tables
    ("uplink.keepalive_s", "30", 30),
    ("uplink.batch_interval_s", "2", 2.0),           # float from the dataclass field
    ("uplink.username", "site-7", "site-7"),         # str | None: text
    ("storage.path", "/data/3.00", "/data/3.00"),
])
def test_values_typed_as_a_technician_types_them(key: str, typed: str, expected: object) -> None:
    data = tomllib.loads(typed_set(CONFIG, key, typed))
    node: object = data
    for part in parse_key(key):
        node = node[part.name]  # type: ignore[index]
        if part.index is not None:
            node = node[part.index]  # type: ignore[index]
    assert node == expected and type(node) is type(expected)


def test_text_that_looks_like_a_number_stays_text_for_a_text_key() -> None:
    text = CONFIG.replace('currency = "EUR"', 'currency = "EUR"\nstanding_charge = "0.50"')
    data = tomllib.loads(typed_set(text, "prepay.standing_charge", "3.00"))
    assert data["prepay"]["standing_charge"] == "3.00"


def test_missing_section_and_new_array_table_are_added() -> None:
    text = typed_set(CONFIG, "console.idle_logout_s", "600")
    text = typed_set(text, "meter[2].id", "shop-16")
    text = typed_set(text, "meter[2].address", "16")
    data = tomllib.loads(text)
    assert data["console"] == {"idle_logout_s": 600}
    assert data["meter"][2] == {"id": "shop-16", "address": 16}
    assert [m["id"] for m in data["meter"][:2]] == ["shop-12", "shop-14"]


def test_top_level_key_can_be_set() -> None:
    data = tomllib.loads(typed_set(CONFIG, "timezone", "Africa/Nairobi"))
    assert data["timezone"] == "Africa/Nairobi" and data["gateway_id"] == "gw-7"


@pytest.mark.parametrize(("key", "value", "message"), [
    ("meter[0].address", "twelve", "not a whole number"),
    ("bus[0].rs485.enabled", "maybe", "not true or false"),
    ("meter[5].address", "1", "only 2"),
    ("uplink..host", "1", "not a key"),
    ("meter[0]", "1", "name a key inside"),
    ("uplink", "1", "table"),
    ("meter.id", "x", "not a table"),
    ("log.level", "a\nb", "one line"),
])
def test_bad_keys_and_values_are_refused(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigEditError, match=message):
        typed_set(CONFIG, key, value)


def test_unparsable_config_is_refused_with_advice() -> None:
    with pytest.raises(ConfigEditError, match="fix it by hand"):
        set_value(CONFIG + "\n[broken\n", "log.level", "debug")


@settings(max_examples=60, deadline=None)
@given(st.integers(-2**40, 2**40) | st.text(max_size=30) | st.booleans())
def test_any_value_round_trips(value: object) -> None:
    text = set_value(CONFIG, "prepay.note", value)
    assert tomllib.loads(text)["prepay"]["note"] == value
    assert tomllib.loads(text)["meter"] == tomllib.loads(CONFIG)["meter"]


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1,
               max_size=30).filter(lambda t: t == t.strip()))
def test_any_typed_text_for_a_text_key_is_stored_as_typed(typed: str) -> None:
    # what the technician typed is what is stored (surrounding quotes are taken off)
    stored = tomllib.loads(typed_set(CONFIG, "log.level", typed))["log"]["level"]
    quoted = len(typed) >= 2 and typed[0] == typed[-1] and typed[0] in "\"'"
    assert stored == typed or quoted
