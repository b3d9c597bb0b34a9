"""Config validation: every kind of mistake gives one clear line naming the file and the key."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from drivers.modbus.plugin import ratios
from gateway.cli.main import main
from gateway.config.loader import ConfigError, load_config

GOOD = """
gateway_id = "gw-test"
timezone = "Europe/Paris"

[storage]
path = "gw.db"
max_mb = 64

[[bus]]
id = "rs485-1"
port = "/dev/ttyUSB0"
baudrate = 9600
parity = "E"
inter_request_gap_ms = 20
[bus.rs485]
enabled = true

[[bus]]
id = "tcp-1"
kind = "tcp"
host = "127.0.0.1"
tcp_port = 1502

[[meter]]
id = "shop-1"
bus = "rs485-1"
protocol = "modbus"
address = 1
profile = "eastron_sdm630"
poll_interval_s = 900

[[meter]]
id = "shop-2"
bus = "tcp-1"
protocol = "modbus"
address = 7
profile = "circutor_cvm_c10"
ct_ratio = "100/5"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return info.value.problems


def test_good_config_loads_with_exact_ratios(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.gateway_id == "gw-test"
    assert [b.id for b in config.buses] == ["rs485-1", "tcp-1"]
    assert config.bus("rs485-1").parity == "E"
    assert config.bus("rs485-1").rs485["enabled"] is True
    assert config.meter("shop-1").poll_interval_s == 900
    assert ratios(config.meter("shop-2")) == (Decimal(20), Decimal(1))
    assert config.storage.path == tmp_path / "gw.db"  # relative to the config file


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (("poll_interval_s = 900", "poll_intervall_s = 900"), "meter[0].poll_intervall_s",
         "unknown key"),
        (('gateway_id = "gw-test"', ""), "gateway_id", "missing"),
        (("address = 1", 'address = "one"'), "meter[0].address", "must be an integer"),
        (('id = "shop-2"', 'id = "shop-1"'), "meter[1].id", "duplicate meter id"),
        (('profile = "eastron_sdm630"', 'profile = "acme_9000"'), "meter[0].profile",
         "unknown profile 'acme_9000'"),
        (('kind = "tcp"\nhost = "127.0.0.1"\ntcp_port = 1502', 'port = "/dev/ttyUSB0"'),
         "bus[1].port", "already used by bus 'rs485-1'"),
        (('bus = "tcp-1"', 'bus = "rs485-9"'), "meter[1].bus", "not declared"),
        (("baudrate = 9600", "baudrate = 9601"), "bus[0].baudrate", "must be one of"),
        (("max_mb = 64", "max_mb = true"), "storage.max_mb", "must be an integer"),
        (("enabled = true", "enabled = 1"), "bus[0].rs485.enabled", "must be true or false"),
        (('ct_ratio = "100/5"', 'ct_ratio = "100/0"'), "meter[1].ct_ratio", "positive"),
    ],
)
def test_each_mistake_names_file_and_key(tmp_path: Path, change: tuple[str, str], key: str,
                                         words: str) -> None:
    text = GOOD.replace(*change, 1)
    assert text != GOOD
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1, problems
    assert problems[0].startswith(str(tmp_path / "site.toml") + ": ")
    assert f"`{key}`" in problems[0]
    assert words in problems[0]


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("address = 1", "address = 300").replace('profile = "circutor_cvm_c10"',
                                                                'profile = "nope"')
    problems = problems_of(tmp_path, text)
    assert len(problems) == 2
    assert any("meter[0].address" in p for p in problems)
    assert any("meter[1].profile" in p for p in problems)


def test_meters_sharing_an_address_on_one_bus(tmp_path: Path) -> None:
    text = GOOD.replace('bus = "tcp-1"', 'bus = "rs485-1"').replace("address = 7", "address = 1")
    text = text.replace('ct_ratio = "100/5"', "")
    problems = problems_of(tmp_path, text)
    assert any("meter[1].address" in p and "already used by meter 'shop-1'" in p
               for p in problems)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    assert "not valid TOML" in problems_of(tmp_path, "gateway_id = ")[0]
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "absent.toml")
    assert "file not found" in info.value.problems[0]


def test_check_config_command_exit_status(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, GOOD)
    assert main(["check-config", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    good.write_text(GOOD.replace("address = 1", "address = 0"))
    assert main(["check-config", str(good)]) == 2
    err = capsys.readouterr().err
    assert "meter[0].address" in err and str(good) in err


PREPAY = """
[prepay]
timezone = "Europe/Paris"
currency = "EUR"

[prepay.tariffs.flat]
currency = "EUR"
versions = [ { effective_from = "2026-01-01", price = "0.30" } ]

[prepay.meters.shop-1]
tariff = "flat"
mode = "automatic"
warn_limit = "5.00"
relay = "relay-shop-1"
"""


def test_prepay_and_uplink_sections_are_validated_with_the_rest(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD + PREPAY + '\n[uplink]\ntopic_prefix = "mtr"\n'))
    assert config.prepay is not None and "shop-1" in config.prepay.meters
    assert config.uplink is not None and config.uplink.gateway_id == "gw-test"
    bad = GOOD + PREPAY.replace("prepay.meters.shop-1", "prepay.meters.shop-9").replace(
        'mode = "automatic"', 'mode = "automatic"') + '\n[uplink]\ntopic_prefx = "x"\n'
    problems = problems_of(tmp_path, bad)
    assert any("`prepay.meters.shop-9`" in p and "not a configured" in p for p in problems)
    assert any("`uplink.topic_prefx`" in p and "unknown key" in p for p in problems)
    wrong_mode = GOOD + PREPAY.replace('mode = "automatic"', 'mode = "sometimes"')
    (line,) = problems_of(tmp_path, wrong_mode)
    assert "prepay.meters.shop-1.mode" in line


def test_log_trace_names_known_protocols_only(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, GOOD)).log_trace == ()  # off by default
    traced = load_config(write(tmp_path, GOOD + '\n[log]\ntrace = ["modbus", "wmbus"]\n'))
    assert traced.log_trace == ("modbus", "wmbus")
    problems = problems_of(tmp_path, GOOD + '\n[log]\ntrace = ["modbus", "dlms-ish"]\n')
    assert len(problems) == 1 and "`log.trace`" in problems[0]
    assert "unknown protocol 'dlms-ish'" in problems[0]
