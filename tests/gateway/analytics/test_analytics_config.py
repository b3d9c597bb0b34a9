"""The [analytics] section: defaults, and every problem at once (exit 2 from check-config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.config.loader import ConfigError, load_config

SITE = """
gateway_id = "gw-a"
timezone = "Europe/Berlin"
[storage]
path = "gw.db"
[[bus]]
id = "tcp-1"
kind = "tcp"
host = "127.0.0.1"
tcp_port = 1502
[[meter]]
id = "shop-1"
bus = "tcp-1"
protocol = "modbus"
address = 7
profile = "eastron_sdm630"
"""


def test_defaults_and_the_site_zone(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE + "[analytics]\n")
    settings = load_config(path).analytics
    assert (settings.grid, settings.timezone, settings.measured_gap_s) == (
        "15min", "Europe/Berlin", 300)
    assert settings.covers("shop-1")


def test_every_problem_at_once(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE + '[analytics]\ngrid = "5min"\nbilling_day = 31\n'
                    'meters = ["shop-9"]\ncolour = "red"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = "\n".join(err.value.problems)
    for key in ("analytics.grid", "analytics.billing_day", "analytics.meters[0]",
                "analytics.colour"):
        assert f"`{key}`" in text
    assert main(["check-config", str(path)]) == 2


TREE = SITE + """
[[meter]]
id = "shop-2"
bus = "tcp-1"
protocol = "modbus"
address = 8
profile = "eastron_sdm630"
[[meter]]
id = "water-1"
bus = "tcp-1"
protocol = "modbus"
address = 9
profile = "eastron_sdm630"
commodity = "water"
"""


def test_balance_tree_and_alarm_thresholds(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(TREE + """[analytics]
[analytics.balance.shop-1]
children = ["shop-2"]
threshold_percent = "3.5"
alarm_after = 2
[analytics.balance.shop-2]
children = ["water-1"]
[analytics.alarms.default]
contracted_power_w = 20000
[analytics.alarms.shop-2]
contracted_power_w = "15000"
voltage_low = 207
""")
    settings = load_config(path).analytics
    first, second = settings.balance
    assert (first.children, str(first.threshold_percent), first.alarm_after,
            first.mixed_kinds) == (("shop-2",), "3.5", 2, False)
    assert second.mixed_kinds  # electricity over water: always incomplete
    assert settings.alarms_of("shop-1").contracted_power_w == 20000
    shop2 = settings.alarms_of("shop-2")
    assert (shop2.contracted_power_w, shop2.voltage_low) == (15000, 207)


def test_balance_and_alarm_problems_all_at_once(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(TREE + """[analytics]
[analytics.balance.nobody]
children = ["shop-1"]
[analytics.balance.shop-1]
children = ["shop-1", "ghost"]
[analytics.balance.shop-2]
threshold_percent = "x"
[analytics.alarms.shop-1]
demand = "rolling"
""")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = "\n".join(err.value.problems)
    for key in ("analytics.balance.nobody", "analytics.balance.shop-1.children[0]",
                "analytics.balance.shop-1.children[1]", "analytics.balance.shop-2.children",
                "analytics.balance.shop-2.threshold_percent", "analytics.alarms.shop-1.demand"):
        assert f"`{key}`" in text, key
