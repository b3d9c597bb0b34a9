"""The console's intervals, balance and alarms operations over a running Service: readings
handed to Service.accept go through the writer's transaction and the analytics hook."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.analytics.grid import Grid
from gateway.app.service import Service
from gateway.config.loader import load_config
from gateway.console import commands_analytics
from gateway.console.api import ControlError, Role
from gateway.console.context import Context
from gateway.console.service_api import ServiceControlApi
from gateway.wiring.console_ports import console_ports
from storage.records import ReadingSet, StoredValue
from tests.harness.eventually import eventually_async

# a bus nobody answers on: the only readings are the test's (the polls fail: meter silent)
SITE = """
gateway_id = "gw-a"
[storage]
path = "gw.db"
commit_interval_ms = 100
[[bus]]
id = "tcp-1"
kind = "tcp"
host = "127.0.0.1"
tcp_port = 9
[[meter]]
id = "feeder"
bus = "tcp-1"
protocol = "modbus"
address = 1
profile = "eastron_sdm630"
poll_interval_s = 3600
[[meter]]
id = "shop"
bus = "tcp-1"
protocol = "modbus"
address = 2
profile = "eastron_sdm120"
poll_interval_s = 3600
[analytics]
[analytics.balance.feeder]
children = ["shop"]
threshold_percent = "5"
alarm_after = 2
"""
START = Grid("15min", "UTC").next_after(1_767_225_600_000)  # 2026-01-01 (UTC site)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    config = tmp_path / "site.toml"
    config.write_text(SITE)
    service = Service(load_config(config))
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await eventually_async(lambda: bool(service.buses), 20.0, "the service's buses")
    try:
        yield service
    finally:
        stop.set()
        await task


class Term:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    async def ask(self, prompt: str) -> str | None:
        return None


async def test_intervals_balance_and_alarms(service: Service) -> None:
    for minute in range(0, 61, 5):  # the feeder loses 10% to an unmetered load
        ts = START + minute * 60_000
        shop = Decimal(minute) / 10
        for meter, kwh in (("feeder", shop / Decimal("0.9")), ("shop", shop)):
            service.accept(ReadingSet(meter, ts, (
                StoredValue("import_active_energy", kwh, "kWh"),)))
    assert service.analytics is not None
    await eventually_async(lambda: service.analytics.alarms.balances >= 4, 10.0,
                           "four balance results")
    api = ServiceControlApi(console_ports(service))
    day = dt.date(2026, 1, 1)
    intervals = await api.intervals("shop", day)
    assert [(i.value, i.quality) for i in intervals] == [(Decimal("1.500000"), "measured")] * 4
    lines = await api.balance(day)
    assert (lines[0].period, lines[0].status, lines[0].loss_percent) == (
        "day", "complete", Decimal("10.00"))
    alarms = await api.alarms()
    shown = [(a.alarm, a.subject, a.active) for a in alarms]
    assert shown[0] == ("balance_loss", "feeder", True)
    assert ("balance_loss", "feeder", False) in shown
    with pytest.raises(ControlError, match="no meter"):
        await api.intervals("nobody", day)

    term = Term()
    ctx = Context(api, term, "vic", Role.VIEWER, [], [])  # type: ignore[arg-type]
    await commands_analytics.cmd_balance(ctx, ["2026-01-01"])
    await commands_analytics.cmd_alarms(ctx, [])
    await commands_analytics.cmd_intervals(ctx, ["shop", "2026-01-01"])
    lines = term.text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert any("10.00" in line for line in lines)
    assert any(line.startswith("ACTIVE") and "balance_loss" in line for line in lines)
