"""The service starts its tasks through the supervisor: a failing one becomes a stored
`component_failed` event and is restarted; a refusing store is logged and the service goes on;
the prepay tick survives a StorageError."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest

from board.watchdog import SystemdNotifier
from drivers.readings import Sample
from gateway.app.service import Service
from gateway.app.supervision import Failure, Supervisor
from gateway.config.loader import MeterConfig, load_config
from gateway.wiring import prepay as prepay_wiring
from gateway.wiring.protocols import Accept
from storage.errors import StoreUnwritable

WAIT_S = 15  # upper bound for a condition to become true; never a duration asserted on

SITE = """
gateway_id = "gw-sup"
[storage]
path = "gw.db"
[board]
state_dir = "{board}"
"""

PREPAY = """
[[bus]]
id = "rs485-1"
kind = "tcp"
host = "127.0.0.1"
tcp_port = 1502
[[meter]]
id = "shop-01"
bus = "rs485-1"
protocol = "modbus"
address = 1
profile = "eastron_sdm630"
[prepay]
timezone = "UTC"
currency = "EUR"
[prepay.tariffs.flat]
currency = "EUR"
versions = [ { effective_from = "2020-01-01", price = "0.30" } ]
[prepay.meters.shop-01]
tariff = "flat"
relay = "relay-shop-01"
"""


def make_service(tmp_path: Path, extra: str = "") -> Service:
    (tmp_path / "site.toml").write_text(SITE.format(board=tmp_path / "board") + extra)
    service = Service(load_config(tmp_path / "site.toml"))
    service.open()
    return service


async def no_pause(_seconds: float) -> None:
    await asyncio.sleep(0)


class FailingOnce:
    """A push source whose first run raises (a bug), the second one runs until cancelled."""

    bus_id = "radio"

    def __init__(self) -> None:
        self.starts = 0
        self.running = asyncio.Event()

    async def run(self, accept: Accept) -> None:
        self.starts += 1
        if self.starts == 1:
            raise KeyError("unexpected telegram field")
        self.running.set()
        await asyncio.Event().wait()


async def test_a_failing_push_source_is_restarted_and_its_failure_stored_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service = make_service(tmp_path)
    service.supervisor = Supervisor(service.board, notifier=SystemdNotifier(None),
                                    sleep=no_pause, on_failure=service._component_failed)
    source = FailingOnce()
    monkeypatch.setattr("gateway.app.service.open_buses", lambda *_args: ({}, [source]))
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    async with asyncio.timeout(WAIT_S):
        await source.running.wait()
    assert service.store is not None
    failed = [e for e in service.store.recent_events(50) if e.kind == "component_failed"]
    assert len(failed) == 1
    assert failed[0].severity == "error"  # a push source is what metering needs
    assert failed[0].data["component"] == "push-radio"
    assert failed[0].data["error_type"] == "KeyError"
    assert "unexpected telegram field" in failed[0].data["error"]
    stop.set()
    await running
    assert source.starts == 2


async def test_a_store_refusing_the_failure_event_is_logged_and_the_service_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    service = make_service(tmp_path)
    assert service.store is not None

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise StoreUnwritable("gw.db: read-only file system")

    monkeypatch.setattr(service.store, "add_event", refuse)
    service._component_failed(Failure("writer", True, "RuntimeError", "bug", 1, 1.0))
    assert "event_not_stored" in [r.getMessage() for r in caplog.records]
    monkeypatch.undo()
    service.store.close()


async def test_the_prepay_tick_survives_a_storage_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service = make_service(tmp_path, PREPAY)
    wiring = service.prepay
    assert wiring is not None and service.store is not None
    monkeypatch.setattr(prepay_wiring, "TICK_S", 0)  # the loop yields instead of waiting
    ticks = 0
    second = asyncio.Event()

    def tick(now_ms: int | None = None) -> None:
        nonlocal ticks
        ticks += 1
        if ticks == 1:
            raise StoreUnwritable("gw.db: disk I/O error")
        second.set()

    monkeypatch.setattr(wiring.engine, "tick", tick)
    loop = asyncio.create_task(wiring._ticks())
    waiter = asyncio.create_task(second.wait())
    async with asyncio.timeout(WAIT_S):
        await asyncio.wait({loop, waiter}, return_when=asyncio.FIRST_COMPLETED)
    assert not loop.done(), loop.exception()  # the StorageError did not end the tick loop
    assert ticks >= 2
    loop.cancel()
    failed = [e for e in service.store.recent_events(50) if e.kind == "prepay_tick_failed"]
    assert len(failed) == 1
    assert failed[0].data == {"error_type": "StoreUnwritable",
                              "reason": "gw.db: disk I/O error"}
    service.store.close()


class SwallowingBus:
    """A bus whose read catches the cancellation and returns (as a pymodbus request can)."""

    def __init__(self) -> None:
        self.reading = asyncio.Event()

    async def read(self, meter: MeterConfig) -> list[Sample]:
        self.reading.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        return []

    def counters(self, meter_id: str) -> dict[str, int]:
        return {}

    async def close(self) -> None:
        return None


async def test_a_poll_whose_driver_swallows_the_cancellation_still_ends(tmp_path: Path) -> None:
    service = make_service(tmp_path, PREPAY)
    bus = SwallowingBus()
    service.buses = {"rs485-1": bus}
    poll = asyncio.create_task(service._poll("shop-01", 0.0))
    async with asyncio.timeout(WAIT_S):
        await bus.reading.wait()
    poll.cancel()
    with pytest.raises(asyncio.CancelledError):
        await poll  # the shutdown is not lost: the poller does not go on reading
    assert service.store is not None
    service.store.close()
