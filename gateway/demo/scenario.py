"""The demo's prepayment story, played against the real service and the reference head-end.

1. Once the head-end has acked a batch (the gateway is connected and subscribed), the back
   office tops up the steady meter through the head-end's command path (`gateway-headend cmd`:
   signed command, result read from the head-end's database), then sets the run-down meter's
   warning level and tops it up for under a minute of its measured load.
2. The run-down meter warns (`low_credit`), runs out and its relay opens.
3. A little later a voucher for it is put on the simulated USB stick: the gateway redeems it
   and the relay closes.

Every step is a note in the live view; what the gateway did is in its events.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from core.money import MONEY_SCALE
from gateway.demo.site import RUN_DOWN_METER, STEADY_METER, VOUCHER_KEY_FILE, VOUCHER_KID
from storage.records import ReadingSet

RUN_DOWN_S: Final = 25  # the run-down top-up buys this long of the meter's load
WARN_AT_S: Final = 12  # the warning comes with this long left
STEADY_TOPUP: Final = "20.00"
VOUCHER_AMOUNT: Final = "5.00"
VOUCHER_PAUSE_S: Final = 5.0  # the tenant walks to the shop for a voucher after the cut-off
COMMAND_TIMEOUT_S: Final = 60.0
WATCH_S: Final = 0.5  # how often the story looks at the head-end and the gateway's events

Note = Callable[[str], None]


def cost_of(power_w: Decimal, seconds: int, price_per_kwh: Decimal) -> str:
    """What `seconds` of `power_w` cost, rounded up to a cent (never less than one)."""
    cents = power_w * seconds / 3_600_000 * price_per_kwh * 100
    return f"{max(1, math.ceil(cents)) / 100:.2f}"


class Scenario:
    def __init__(self, service: Any, state: Path, note: Note, headend: Any = None,
                 broker_url: str | None = None) -> None:
        self.service, self.state, self.note = service, state, note
        self.headend, self.broker_url = headend, broker_url
        self.power: dict[str, Decimal] = {}
        self.run_id = uuid.uuid4().hex[:8]  # top-up ids unique per run: a txid credits once

    def on_reading(self, reading: ReadingSet) -> None:
        for value in reading.values:
            if value.quantity == "active_power":
                self.power[reading.meter_id] = Decimal(value.value)

    def prepaid(self, meter_id: str) -> bool:
        prepay = self.service.prepay
        return prepay is not None and meter_id in prepay.engine.settings.meters

    async def run(self) -> None:
        mark = self._last_event_id()
        if self.headend is not None:
            await self._server_topups()
            mark = self._last_event_id()  # the run-down starts with the top-up
        else:
            self.note("uplink off: no server top-up (install mosquitto or pass --broker); "
                      "a voucher brings the first credit")
        if not self.prepaid(RUN_DOWN_METER):
            return
        if self.headend is not None:
            await self._event(RUN_DOWN_METER, "relay_opened", mark)
            self.note(f"{RUN_DOWN_METER}: out of credit, relay open")
        self.note(f"{RUN_DOWN_METER}: a voucher goes on the stick in {VOUCHER_PAUSE_S:g} s")
        await asyncio.sleep(VOUCHER_PAUSE_S)  # the story's pause, not a wait for state
        self._put_voucher(RUN_DOWN_METER, VOUCHER_AMOUNT)
        await self._event(RUN_DOWN_METER, "voucher_redeemed", mark)
        self.note(f"{RUN_DOWN_METER}: voucher redeemed ({VOUCHER_AMOUNT} EUR)")

    async def _server_topups(self) -> None:
        while self.headend.stats.stored < 1:
            await asyncio.sleep(WATCH_S)
        self.note("head-end acked the first batch: the gateway is connected")
        if self.prepaid(STEADY_METER):
            await self._topup(STEADY_METER, STEADY_TOPUP)
        if self.prepaid(RUN_DOWN_METER):
            power = await self._power(RUN_DOWN_METER)
            price = self._price(RUN_DOWN_METER)
            warn = cost_of(power, WARN_AT_S, price)
            await self._command("prepay.limit", {"meter": RUN_DOWN_METER, "warn_limit": warn})
            await self._topup(RUN_DOWN_METER, cost_of(power, RUN_DOWN_S, price))

    async def _topup(self, meter: str, amount: str) -> None:
        await self._command("credit.topup", {"meter": meter, "amount": amount,
                                             "txid": f"demo-{self.run_id}-{meter}"})

    async def _command(self, op: str, args: dict[str, Any]) -> None:
        from uplink.demo import HEADEND_DB_FILE
        from uplink.headend.command import CommandRequest, send_and_wait

        assert self.broker_url is not None
        request = CommandRequest(self.broker_url, self.headend.prefix,
                                 self.service.config.gateway_id, op, args, ttl_s=300)
        result = await send_and_wait(request, self.headend.key, self.state / HEADEND_DB_FILE,
                                     COMMAND_TIMEOUT_S)
        shown = " ".join(f"{k}={v}" for k, v in args.items() if k != "txid")
        self.note(f"server {op} {shown}: {'ok' if result.ok else 'refused'}"
                  f"{'' if result.ok else ' ' + str(result.r)}")

    async def _power(self, meter: str) -> Decimal:
        while meter not in self.power:
            await asyncio.sleep(WATCH_S)
        return max(self.power[meter], Decimal(100))  # a meter at rest still gets a minute

    def _price(self, meter: str) -> Decimal:
        """The price per kWh in force now for the meter (money units -> currency units)."""
        units = self.service.prepay.engine.book.price_at(meter, int(time.time() * 1000))
        return Decimal(units) / MONEY_SCALE

    def _put_voucher(self, meter: str, amount: str) -> None:
        """Issue a voucher as the back office does and 'insert' a stick holding it."""
        from uplink.demo import ensure_private_key
        from uplink.headend.voucher_issue import VoucherSpec, issue

        spec = VoucherSpec(self.service.config.gateway_id, meter, amount, "EUR",
                           int(time.time()) + 86_400, VOUCHER_KID)
        stick = self.state / f"stick-{self.run_id}"
        issue(spec, ensure_private_key(self.state / VOUCHER_KEY_FILE), stick, 1,
              ledger_path=self.state / "vouchers-issued.jsonl")  # the ledger stays home
        # the stick appears whole, voucher inside: renamed into the board's media folder
        media = self.state / "board" / "media"
        media.mkdir(parents=True, exist_ok=True)
        stick.rename(media / stick.name)
        self.note(f"{meter}: voucher for {amount} EUR put on the USB stick")

    def _last_event_id(self) -> int:
        events = self.service.store.recent_events(1)
        return events[0].id if events else 0

    async def _event(self, meter: str, kind: str, after_id: int) -> None:
        while not any(e.kind == kind and (e.id or 0) > after_id
                      for e in self.service.store.recent_events(20, meter)):
            await asyncio.sleep(WATCH_S)
