"""The console's ports over the running service: the composition root's half of the console.

`console_ports(service)` adapts the parts of the running service to the ports the console
declares (gateway/console/ports.py). The service is seen through `ServiceView`
(gateway/wiring/host.py), so nothing in wiring/ imports gateway.app.service (no import cycle).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.console.ports import ConsolePorts
from gateway.wiring.bus_directory import OpenedBuses
from gateway.wiring.host import ServiceView
from gateway.wiring.prepay import PrepayWiring
from storage.ledger import Account, account
from storage.records import ReadingSet
from storage.store import Store

if TYPE_CHECKING:  # paho and the signing code load only where [uplink] is configured
    from uplink.service import Uplink


class _Meters:
    def __init__(self, service: ServiceView) -> None:
        self._service = service

    def polled(self, meter_id: str) -> bool:
        meter = self._service.config.meter(meter_id)
        return meter.bus in self._service.buses  # push buses are never in `buses`

    async def read_now(self, meter_id: str) -> ReadingSet:
        return await self._service.read_now(meter_id)

    def last_stored(self, meter_id: str) -> ReadingSet | None:
        store = self._service.store
        last = store.last_readings(meter_id, 1) if store is not None else []
        return last[0] if last else None

    def last_ok_ms(self, meter_id: str) -> int | None:
        health = self._service.health
        return health.last_ok_ms.get(meter_id) if health is not None else None

    def last_error(self, meter_id: str) -> str | None:
        health = self._service.health
        return health.last_error.get(meter_id) if health is not None else None


class _Prepay:
    def __init__(self, wiring: PrepayWiring, store: Callable[[], Store | None]) -> None:
        self._wiring, self._store = wiring, store
        self._settings = wiring.engine.settings

    @property
    def currency(self) -> str:
        return self._settings.currency

    @property
    def emergency_credit(self) -> int:
        return self._settings.emergency_credit

    def prepaid(self, meter_id: str) -> bool:
        return meter_id in self._settings.meters

    def account(self, meter_id: str) -> Account:
        store = self._store()
        if store is None:
            return Account(meter_id)
        with store.transaction() as tx:
            return account(tx, meter_id)

    def relay_closed(self, meter_id: str) -> bool | None:
        return self._wiring.board.output_state(self._settings.meters[meter_id].relay)

    def voucher_key_ids(self) -> list[str]:
        return list(self._settings.voucher_keys)

    async def run(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        return await self._wiring.handlers()[op](args, None)


class _Uplink:
    def __init__(self, uplink: Uplink) -> None:
        self._uplink = uplink

    def connected(self) -> bool:
        return bool(self._uplink.state().get("connected"))

    def last_error(self) -> str | None:
        error = self._uplink.state().get("last_error")
        return str(error) if error else None

    async def flush(self, timeout_s: float) -> None:
        await self._uplink.flush(timeout_s)


class _Restart:
    def __init__(self, service: ServiceView) -> None:
        self._service = service

    def available(self) -> bool:
        return self._service.stop_event is not None

    def request(self, delay_s: float) -> None:
        stop = self._service.stop_event
        if stop is None:
            return
        self._service.restart_requested = True  # `gateway run` execs itself after the stop
        asyncio.get_running_loop().call_later(delay_s, stop.set)


def console_ports(service: ServiceView) -> ConsolePorts:
    """The ports of the running service (buses are open: called from its start-up)."""
    def store() -> Store | None:
        return service.store

    prepay, buses = service.prepay, OpenedBuses(service)
    return ConsolePorts(
        config=service.config, clock=service.clock, started_ms=service.started_ms,
        store=store, meters=_Meters(service), buses=buses, meter_keys=buses,
        events=service.record_event, restart=_Restart(service),
        system_time=service.board, gateway_key=service.key_file(),
        prepay=_Prepay(prepay, store) if prepay is not None else None,
        uplink=_Uplink(service.uplink) if service.uplink is not None else None,
        log=service.log_ring)
