"""ServiceControlApi over the ports of a running Service: real Store, SimulatedBoard, Modbus
simulator."""

from __future__ import annotations

import asyncio
import csv
import logging
import tempfile
import tomllib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.modbus.site import RunningSim, SimBus, SimMeter, site_config, start_simulators
from gateway.app.service import Service
from gateway.config.loader import load_config
from gateway.console.accounts import hash_password
from gateway.console.api import ControlError
from gateway.console.ops_config import flatten, toml_literal
from gateway.console.service_api import ServiceControlApi
from gateway.wiring.console_ports import console_ports
from tests.harness.eventually import eventually_async

SITE = (SimBus("rs485-1", "rtu", (SimMeter("shop-01", 1, "eastron_sdm630", 5),
                                  SimMeter("shop-02", 2, "eastron_sdm120", 6))),)
START_DEADLINE_S = 20.0  # the service opens its store and buses well within this

PREPAY = """
[prepay]
timezone = "UTC"
currency = "EUR"
reconnect = "automatic"
reconnect_threshold = "0.50"
emergency_credit = "5.00"

[prepay.tariffs.flat]
currency = "EUR"
versions = [ { effective_from = "2020-01-01", price = "0.0001" } ]

[prepay.meters.shop-01]
tariff = "flat"
mode = "automatic"
warn_limit = "3.00"
relay = "relay-shop-01"
"""


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RunningSim]:
    running = start_simulators(SITE, tmp_path / "sim")
    yield running
    running.stop()


@pytest.fixture
async def service(sim: RunningSim, tmp_path: Path,
                  caplog: pytest.LogCaptureFixture) -> AsyncIterator[Service]:
    caplog.set_level(logging.INFO)  # the service's log level; the ring sees what it logs
    sock = Path(tempfile.mkdtemp(prefix="ctl-")) / "control.sock"  # unix paths are short
    console = (f'\n[console]\nsocket = "{sock}"\n\n[[console.account]]\nname = "ana"\n'
               f'role = "admin"\npassword_hash = "{hash_password("long-enough-1")}"\n')
    config = tmp_path / "site.toml"
    config.write_text(site_config(sim, tmp_path, poll_interval_s=3600, commit_interval_ms=100,
                                  extra=PREPAY + console))
    service = Service(load_config(config))
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await eventually_async(lambda: service.buses and sock.exists(), START_DEADLINE_S,
                           "the service's buses and control socket")
    try:
        yield service
    finally:
        stop.set()
        await task


@pytest.fixture
def api(service: Service) -> ServiceControlApi:
    return ServiceControlApi(console_ports(service))


async def test_status_reports_gateway_storage_and_bus_counters(api: ServiceControlApi) -> None:
    await api.read_meter("shop-02")
    status = await api.status()
    assert status.gateway_id == "gw-demo"
    assert status.uplink_state == "not configured"
    assert status.storage_used_bytes > 0
    assert [b.bus for b in status.buses] == ["rs485-1"]
    assert status.buses[0].frames_ok >= 1


async def test_read_stores_a_reading_and_meters_shows_it(api: ServiceControlApi) -> None:
    reading = await api.read_meter("shop-02")
    assert reading.quantities and all(isinstance(q.value, Decimal | str)
                                      for q in reading.quantities)
    rows = {r.meter_id: r for r in await api.meters()}
    assert rows["shop-02"].last_reading == reading.read_at
    assert rows["shop-02"].credit is None  # not prepaid
    assert rows["shop-01"].credit == Decimal("0.00") and rows["shop-01"].currency == "EUR"


async def test_scan_finds_the_simulated_slaves(api: ServiceControlApi,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # the first ids only: all 247 take ~25 s on the 9600 baud pty
    monkeypatch.setattr("drivers.modbus.plugin.SCAN_ADDRESSES", range(1, 6))
    hits = await api.scan_bus("rs485-1", 10)
    assert {(h.address, h.known_meter) for h in hits} == {("1", "shop-01"), ("2", "shop-02")}


async def test_topup_relay_and_emergency_go_through_prepay(api: ServiceControlApi,
                                                            service: Service) -> None:
    info = await api.topup("shop-01", Decimal("20.00"), "receipt-1")
    assert info.balance == Decimal("20.00")
    with pytest.raises(ControlError, match="already used"):
        await api.topup("shop-01", Decimal("20.00"), "receipt-1")
    with pytest.raises(ControlError, match="at most 2 decimals"):
        await api.topup("shop-01", Decimal("1.001"), "receipt-2")
    for bad in (Decimal(0), Decimal("-5.00"), Decimal("NaN"), Decimal("1E+10")):
        with pytest.raises(ControlError, match="give a positive amount"):
            await api.topup("shop-01", bad, "receipt-2")
    # whole cents however written: the prepay operation is given them as cents text
    assert (await api.topup("shop-01", Decimal("5.000"), "receipt-3")).balance == Decimal("25.00")
    assert (await api.topup("shop-01", Decimal("1E+1"), "receipt-4")).balance == Decimal("35.00")
    state = await api.set_relay("shop-01", False)
    assert state.closed is False and service.board.output_state("relay-shop-01") is False
    state = await api.set_relay("shop-01", True)
    assert state.closed is True
    with pytest.raises(ControlError, match="not a prepaid meter"):
        await api.set_relay("shop-02", True)
    info = await api.emergency("shop-01")
    assert info.emergency_active and info.emergency_available == Decimal(0)
    with pytest.raises(ControlError, match="refused"):
        await api.emergency("shop-01")  # once per top-up cycle


async def test_bad_input_names_the_thing(api: ServiceControlApi) -> None:
    with pytest.raises(ControlError, match="no meter 'nope'"):
        await api.read_meter("nope")
    with pytest.raises(ControlError, match="no bus 'x'"):
        await api.scan_bus("x", 1)
    with pytest.raises(ControlError, match="simulated board"):
        await api.set_time(datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(ControlError, match="uplink is not available"):
        await api.uplink_flush()
    with pytest.raises(ControlError, match="writable directory"):
        await api.export("/nonexistent/stick", date(2026, 1, 1), date(2026, 1, 2))


async def test_config_show_hides_secrets_and_set_validates(api: ServiceControlApi,
                                                           service: Service) -> None:
    shown = {e.key: e.value for e in await api.config_show()}
    assert shown["console.account[0].password_hash"] == "<hidden>"
    assert shown["meter[0].address"] == "1"
    assert await api.config_check() == []
    with pytest.raises(ControlError, match="not changed"):
        await api.config_set("meter[0].poll_interval_s", "-5")
    entry = await api.config_set("meter[0].poll_interval_s", "30")
    assert entry.value == "30"
    assert load_config(service.config.source).meters[0].poll_interval_s == 30


async def test_audit_and_export_land_in_storage_and_csv(api: ServiceControlApi, service: Service,
                                                        tmp_path: Path) -> None:
    await api.read_meter("shop-02")
    await api.record_audit("ana", "relay", ["shop-01", "on"], "ok")
    service.writer.flush()  # type: ignore[union-attr]
    events = service.store.recent_events(20)  # type: ignore[union-attr]
    audit = next(e for e in events if e.kind == "audit")
    assert audit.data["user"] == "ana" and audit.data["arguments"] == ["shop-01", "on"]
    stick = tmp_path / "stick"
    stick.mkdir()
    today = datetime.now(UTC).date()
    result = await api.export(str(stick), today, today)
    with (stick / result.files[0]).open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == result.readings > 0
    assert {row["meter_id"] for row in rows} == {"shop-01", "shop-02"}
    with (stick / result.files[1]).open() as handle:
        kinds = [row["kind"] for row in csv.DictReader(handle)]
    assert "audit" in kinds and len(kinds) == result.events


async def test_log_lines_and_keys(api: ServiceControlApi) -> None:
    lines = await api.log_lines(None, 500)
    assert any(line.event == "gateway_running" for line in lines)
    assert await api.log_lines(lines[-1].seq, 10) == []
    assert all(k.key_id != "" for k in await api.keys_show())


async def test_log_trace_shows_the_wire_bytes_of_a_read(api: ServiceControlApi) -> None:
    assert await api.log_trace("modbus", True) == ["modbus"]
    try:
        await api.read_meter("shop-02")
        lines = await api.log_lines(None, 500)
    finally:
        assert await api.log_trace("modbus", False) == []
    wire = [line for line in lines if line.event == "wire_bytes"]
    mine = [line for line in wire if line.meter == "shop-02"]  # the scheduler polls too
    assert any("direction=tx" in line.fields and "hex=02" in line.fields for line in mine)
    assert any("direction=rx" in line.fields and "hex=02" in line.fields for line in mine)
    assert all(line.level == "trace" for line in wire)
    with pytest.raises(ControlError, match="no bus of protocol 'dlms'"):
        await api.log_trace("dlms", True)


_VALUES = st.recursive(
    st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3), max_leaves=6)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), _VALUES,
                       min_size=1, max_size=4))
def test_shown_values_are_toml_that_parses_back(table: dict[str, object]) -> None:
    for key, value in flatten({"section": table}, ""):
        parsed = tomllib.loads(f"v = {toml_literal(value)}")["v"]
        assert parsed == value, key
