"""Service-side prepayment operations: relay, credit, top-up, emergency credit.

They run the same prepay operations the head-end sends over the uplink, so the console obeys the
same rules (a relay the credit keeps open stays open) and the same replay keys.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.errors import Refused
from core.money import NO_CURRENCY, SHOWN_DECIMALS, Money
from gateway.console.api import ControlError, CreditInfo, RelayState
from gateway.console.ops_common import OpsBase, money, utc
from gateway.console.ports import PrepayFacade
from prepay.errors import PrepayError
from storage.errors import StorageError


async def _run(prepay: PrepayFacade, op: str, args: dict[str, Any]) -> dict[str, Any]:
    try:
        return await prepay.run(op, args)
    except Refused as exc:
        raise ControlError(f"{args.get('meter')}: refused ({exc.reason}); "
                           "check 'credit' and 'log'") from None
    except (PrepayError, StorageError) as exc:
        raise ControlError(f"{args.get('meter')}: {exc}; check 'log'") from None


def _cents_text(amount: Decimal) -> str:
    """The top-up as the prepay operation takes it ("20.00"): positive whole cents within the
    ledger's bounds (`Money.of`), since a technician types cents, never tenths of a cent."""
    try:
        value = Money.of(amount, NO_CURRENCY)
    except Refused:
        value = Money.zero(NO_CURRENCY)
    if value.units <= 0 or Decimal(value.text()) != amount:  # text() rounds to cents
        raise ControlError(f"{amount}: give a positive amount with at most "
                           f"{SHOWN_DECIMALS} decimals, e.g. 20.00")
    return value.text()


class PrepayOps(OpsBase):
    async def set_relay(self, meter_id: str, closed: bool) -> RelayState:
        prepay = self._prepay_of(meter_id)
        result = await _run(prepay, "relay.set", {"meter": meter_id,
                                                  "state": "closed" if closed else "open"})
        if bool(result["closed"]) != closed:
            stays = "closed" if result["closed"] else "open"
            raise ControlError(f"{meter_id}: the relay stays {stays} (the credit rules decide);"
                               " check 'credit'")
        return RelayState(meter_id, bool(result["closed"]), utc(self.ports.clock.wall_ms()))

    async def credit(self, meter_id: str) -> CreditInfo:
        prepay = self._prepay_of(meter_id)
        try:
            account = prepay.account(meter_id)
        except StorageError as exc:
            raise ControlError(f"{meter_id}: reading the ledger failed ({exc}); check 'log'"
                               ) from None
        active = account.emergency > 0
        return CreditInfo(meter_id, money(account.balance), prepay.currency, active,
                          Decimal(0) if active else money(prepay.emergency_credit),
                          prepay.relay_closed(meter_id))

    async def topup(self, meter_id: str, amount: Decimal, reference: str) -> CreditInfo:
        prepay = self._prepay_of(meter_id)
        cents = _cents_text(amount)
        if not reference.strip():
            raise ControlError("give the receipt number as reference: topup METER AMOUNT REF")
        result = await _run(prepay, "credit.topup", {"meter": meter_id, "amount": cents,
                                                     "txid": f"console:{reference}"})
        if not result.get("credited"):
            raise ControlError(f"reference {reference!r} was already used for a top-up; nothing"
                               " was added. Give the receipt number: topup METER AMOUNT REF")
        return await self.credit(meter_id)

    async def emergency(self, meter_id: str) -> CreditInfo:
        prepay = self._prepay_of(meter_id)
        await _run(prepay, "emergency.activate", {"meter": meter_id})
        return await self.credit(meter_id)
