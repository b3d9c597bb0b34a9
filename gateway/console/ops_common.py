"""What every service-side operation group shares: the ports, and the meter and store checks.

The operations are grouped by topic (`ops_meters`, `ops_prepay`, `ops_config`, `ops_system`),
each a mixin over `self.ports`; `gateway.console.service_api.ServiceControlApi` combines them.
Each turns the component errors into a `ControlError` that names the meter, bus, key or file and
says what to check next.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from core.money import NO_CURRENCY, Money
from gateway.config.loader import MeterConfig
from gateway.console.api import ControlError
from gateway.console.ports import ConsolePorts, PrepayFacade
from storage.store import Store


def money(units: int) -> Decimal:
    """Ledger money units as the cents a technician reads (`Money.text`: half-even)."""
    return Decimal(Money(units, NO_CURRENCY).text())


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class OpsBase:
    """The ports and the lookups every operation group needs."""

    ports: ConsolePorts

    def _store(self) -> Store:
        store = self.ports.store()
        if store is None:
            raise ControlError("the service is not running (storage closed); check 'log'")
        return store

    def _meter(self, meter_id: str) -> MeterConfig:
        for meter in self.ports.config.meters:
            if meter.id == meter_id:
                return meter
        raise ControlError(f"no meter {meter_id!r}: type 'meters' for the configured ids")

    def _prepay_of(self, meter_id: str) -> PrepayFacade:
        """The prepayment, after checking the meter exists and is prepaid."""
        self._meter(meter_id)
        prepay = self.ports.prepay
        if prepay is None:
            raise ControlError("prepayment is not available on this gateway (no [prepay])")
        if not prepay.prepaid(meter_id):
            raise ControlError(f"{meter_id} is not a prepaid meter (not in [prepay.meters])")
        return prepay
