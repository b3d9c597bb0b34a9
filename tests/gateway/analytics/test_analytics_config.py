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
