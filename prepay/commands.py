"""Server command handlers for prepayment, as plain async functions of (args, ctx) -> dict.

gateway/ registers them on the uplink CommandRegistry, turning `CommandRefusedError` into the
uplink's `CommandRefused` (prepay does not import uplink). Amounts travel as decimal strings
in currency units ("12.50"); results report balances the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from prepay import core, money
from prepay.engine import PrepayEngine
from prepay.errors import CommandRefusedError, PrepayError, TariffError
from prepay.settings import MeterSettings
from prepay.tariffs import money_text, money_units, tariff_from_dict
from storage import ledger

LOGGER = logging.getLogger(__name__)

MAX_TXID_CHARS = 128  # a transaction id is an opaque id, never a payload
Handler = Callable[[dict[str, Any], Any], Awaitable[dict[str, Any]]]


def credit_topup(engine: PrepayEngine, tx: Any, meter: MeterSettings, amount: int, key: str,
                 now: int, data: dict[str, Any]) -> bool:
    """Credit a top-up once per `key` (split against emergency credit and debt), then
    re-decide the relay. Returns False when the key was already credited."""
    acc = ledger.account(tx, meter.meter_id)
    entries = money.topup_entries(acc, amount, key, now, engine.settings.debt_share_bp, data)
    if not engine.append(tx, entries):
        return False
    engine.evaluate(tx, meter, now)
    return True


def account_summary(tx: Any, meter_id: str) -> dict[str, Any]:
    """The meter's money position as exact decimal strings (for results and the console)."""
    acc = ledger.account(tx, meter_id)
    return {
        "meter": meter_id,
        "balance": money_text(acc.balance),
        "credit": money_text(acc.credit),
        "debt": money_text(acc.debt),
        "emergency": money_text(acc.emergency),
        "loaded_total": money_text(acc.loaded_total),
        "last_load": None if acc.last_load_amount is None else money_text(acc.last_load_amount),
        "last_load_ms": acc.last_load_ms,
    }


class PrepayCommands:
    """The six prepay operations over one engine; `handlers()` maps op names to them."""

    def __init__(self, engine: PrepayEngine) -> None:
        self.engine = engine

    def handlers(self) -> dict[str, Handler]:
        return {
            "credit.topup": self.credit_topup,
            "relay.set": self.relay_set,
            "prepay.mode": self.prepay_mode,
            "prepay.limit": self.prepay_limit,
            "tariff.set": self.tariff_set,
            "emergency.activate": self.emergency_activate,
        }

    def _meter(self, args: dict[str, Any]) -> MeterSettings:
        meter_id = args.get("meter")
        meter = self.engine.settings.meters.get(meter_id) if isinstance(meter_id, str) else None
        if meter is None:
            raise CommandRefusedError("unknown_meter")
        return meter

    @staticmethod
    def _amount(args: dict[str, Any], key: str) -> int:
        try:
            return money_units(args.get(key), key)
        except TariffError:
            raise CommandRefusedError(f"bad_{key}") from None

    async def credit_topup(self, args: dict[str, Any], ctx: Any) -> dict[str, Any]:
        meter = self._meter(args)
        amount = self._amount(args, "amount")
        txid = args.get("txid")
        if not isinstance(txid, str) or not 0 < len(txid) <= MAX_TXID_CHARS:
            raise CommandRefusedError("bad_txid")
        currency = args.get("currency", self.engine.settings.currency)
        if currency != self.engine.settings.currency:
            raise CommandRefusedError("wrong_currency")
        now = self.engine.clock()
        with self.engine.store.transaction() as tx:
            credited = credit_topup(self.engine, tx, meter, amount, f"topup:{txid}", now,
                                    {"txid": txid, "via": "server"})
            return {"credited": credited, **account_summary(tx, meter.meter_id)}

    async def relay_set(self, args: dict[str, Any], ctx: Any) -> dict[str, Any]:
        meter = self._meter(args)
        state = args.get("state")
        if state not in ("open", "closed"):
            raise CommandRefusedError("bad_state")
        now = self.engine.clock()
        with self.engine.store.transaction() as tx:
            machine = self.engine.evaluate(
                tx, meter, now, before=lambda m: m.command(state == "closed"))
            return {"meter": meter.meter_id, "closed": machine.state["closed"]}

    async def prepay_mode(self, args: dict[str, Any], ctx: Any) -> dict[str, Any]:
        meter = self._meter(args)
        mode = args.get("mode")
        if mode not in core.MODES:
            raise CommandRefusedError("bad_mode")
        return self._setting(meter, "mode", mode)

    async def prepay_limit(self, args: dict[str, Any], ctx: Any) -> dict[str, Any]:
        meter = self._meter(args)
        return self._setting(meter, "warn_limit", self._amount(args, "warn_limit"))

    def _setting(self, meter: MeterSettings, key: str, value: Any) -> dict[str, Any]:
        now = self.engine.clock()
        with self.engine.store.transaction() as tx:
            ledger.save_setting(tx, meter.meter_id, key, value, now)
            self.engine.event(tx, "prepay_setting_changed", meter.meter_id,
                               {"key": key, "value": value}, now, "info")
            machine = self.engine.evaluate(tx, meter, now)
            return {"meter": meter.meter_id, key: value, "closed": machine.state["closed"]}

    async def tariff_set(self, args: dict[str, Any], ctx: Any) -> dict[str, Any]:
        tariff_id = args.get("tariff")
        definition = args.get("definition")
        if not isinstance(definition, dict):
            raise CommandRefusedError("bad_tariff")
        meters = args.get("meters", [])
        if not isinstance(tariff_id, str) or not tariff_id or not isinstance(meters, list):
            raise CommandRefusedError("bad_tariff")
        try:
            tariff = tariff_from_dict(tariff_id, definition, self.engine.book.tz)
        except PrepayError as exc:
            LOGGER.warning("tariff_refused", extra={"tariff": tariff_id, "error": str(exc)})
            raise CommandRefusedError("bad_tariff") from None
        targets = [self._meter({"meter": m}) for m in meters]
        now = self.engine.clock()
        with self.engine.store.transaction() as tx:
            ledger.save_tariff(tx, tariff_id, definition, now)
            for meter in targets:
                ledger.save_setting(tx, meter.meter_id, "tariff_id", tariff_id, now)
            self.engine.event(tx, "tariff_set", None, {"tariff": tariff_id,
                               "meters": [m.meter_id for m in targets]}, now, "info")
        self.engine.book.set_tariff(tariff)
        for meter in targets:
            self.engine.book.assign(meter.meter_id, tariff_id)
        return {"tariff": tariff_id, "versions": len(tariff.versions),
                "meters": [m.meter_id for m in targets]}

    async def emergency_activate(self, args: dict[str, Any], ctx: Any) -> dict[str, Any]:
        meter = self._meter(args)
        amount = self.engine.settings.emergency_credit
        if amount <= 0:
            raise CommandRefusedError("emergency_disabled")
        now = self.engine.clock()
        with self.engine.store.transaction() as tx:
            return activate_emergency(self.engine, tx, meter, amount, now)


def activate_emergency(engine: PrepayEngine, tx: Any, meter: MeterSettings, amount: int,
                       now: int) -> dict[str, Any]:
    """Grant emergency credit once per top-up cycle: refused while some is still owed."""
    acc = ledger.account(tx, meter.meter_id)
    key = f"emergency:{meter.meter_id}:{acc.loaded_total}:{acc.last_load_ms}"
    if acc.emergency > 0 or ledger.has_key(tx, key):
        raise CommandRefusedError("emergency_already_used")
    engine.append(tx, [money.emergency_entry(acc, amount, key, now)])
    engine.evaluate(tx, meter, now)
    return account_summary(tx, meter.meter_id)
