"""PrepayEngine: charges readings, runs each meter's relay machine, drives relays and alarms.

Everything runs inside storage transactions so money, relay state, events and their outbox
rows commit together. The relays (prepay.relays.RelayIO, which the gateway adapts its board to)
are driven after each decision; on a restart
`restore_relays()` sets every relay from the persisted machine state re-evaluated against the
ledger, never to a blind default.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from core.quantities import CHARGEABLE
from prepay import core, money
from prepay.errors import PrepayError, RelayIOError, TariffError
from prepay.relays import InputEdge, RelayIO
from prepay.settings import MeterSettings, PrepaySettings
from prepay.tariffs import (
    GENERATOR,
    GRID,
    TariffBook,
    apportion,
    money_text,
    tariff_from_dict,
)
from storage import ledger
from storage.ledger import Entry
from storage.records import ReadingSet

LOGGER = logging.getLogger(__name__)

# An interval longer than this (a quarter year) is priced at the tariff in force at its end,
# not slot by slot: bounds the 15-minute slots one reading may walk (~8800) in the poll loop.
MAX_APPORTION_MS = 92 * 24 * 3600 * 1000
# Register noise below this (milli-units: 10 Wh, 10 litres) is not treated as tamper.
TAMPER_MIN_MILLI = 10
SEVERITY = {
    "relay_opened": "warning", "relay_closed": "info", "low_credit": "warning",
    "credit_exhausted": "warning", "reconnect_armed": "info", "max_power_trip": "warning",
    "max_power_lockout": "error",
}


class StoreLike(Protocol):
    """The part of storage.store.Store the engine uses."""

    def transaction(self) -> Any: ...
    def outbox_add(self, tx: Any, kind: str, ref: int, ts_ms: int) -> int: ...
    def add_event(self, kind: str, *, meter_id: str | None, data: Mapping[str, Any] | None,
                  ts_ms: int, severity: str = "info", tx: Any = None) -> int: ...


class PrepayEngine:
    """Prepayment for the meters of `settings`; `clock()` returns wall time in ms."""

    def __init__(self, settings: PrepaySettings, store: StoreLike, relays: RelayIO,
                 clock: Callable[[], int]) -> None:
        self.settings = settings
        self.store = store
        self.relays = relays
        self.clock = clock
        self.book: TariffBook = settings.tariff_book()
        self._power: dict[str, int | None] = {}
        self._tamper: dict[tuple[str, str], bool] = {}
        self._book_loaded = False

    # -- readings ------------------------------------------------------------------------
    def on_readings(self, tx: Any, reading_sets: Iterable[ReadingSet]) -> None:
        """Charge the register deltas of prepay meters, in the caller's transaction."""
        self._load_book(tx)
        for rs in reading_sets:
            meter = self.settings.meters.get(rs.meter_id)
            if meter is None:
                continue
            values = {v.quantity: v.value for v in rs.values}
            power = values.get("active_power")
            self._power[meter.meter_id] = _int_or_none(power)
            try:
                consumed = 0
                for register, quantity, source in self._registers(meter):
                    if quantity in values:
                        consumed += self._charge(tx, meter, rs, register,
                                                 str(values[quantity]), source)
                self._check_consumption(tx, meter, consumed, rs.ts_ms)
                self.evaluate(tx, meter, rs.ts_ms)
            except PrepayError as exc:
                # never abort the caller's transaction (it stores the readings)
                self.event(tx, "prepay_charge_failed", meter.meter_id, {"error": str(exc)},
                           rs.ts_ms, "error")

    def _registers(self, meter: MeterSettings) -> list[tuple[str, str, str]]:
        base = CHARGEABLE[meter.commodity]
        if meter.generator == "register":
            assert meter.grid_register and meter.generator_register
            return [("grid", meter.grid_register, GRID),
                    ("generator", meter.generator_register, GENERATOR)]
        source = GRID
        if meter.generator == "input" and meter.generator_input:
            source = GENERATOR if self._read_input(meter.generator_input) else GRID
        return [("total", base, source)]

    def _charge(self, tx: Any, meter: MeterSettings, rs: ReadingSet, register: str,
                text: str, source: str) -> int:
        mid = meter.meter_id
        try:
            milli = core.parse_milli(text)
        except PrepayError:
            self.event(tx, "register_unreadable", mid, {"register": register, "value": text},
                        rs.ts_ms, "warning")
            return 0
        last = ledger.mark(tx, mid, register)
        if last is not None and rs.ts_ms <= last[1]:
            return 0  # a replayed or stale reading (clock set back): the next newer one charges
        if last is None or milli <= last[0]:
            if last is not None and milli < last[0]:
                self.event(tx, "register_went_back", mid, {"register": register, "from_milli":
                           last[0], "to_milli": milli}, rs.ts_ms, "warning")
            ledger.save_mark(tx, mid, register, milli, rs.ts_ms, rs.id)
            return 0
        delta = milli - last[0]
        # priced before the mark moves: a pricing error leaves the delta for the next reading
        pieces = self._pieces(tx, mid, last[1], rs.ts_ms, source, delta)
        acc = ledger.account(tx, mid)
        carry, total = acc.carry, 0
        for energy, price in pieces:
            charge, carry = core.charge_for(energy, price, carry)
            total += charge
        key = f"charge:{mid}:{register}:{rs.id if rs.id is not None else rs.ts_ms}"
        data = {"register": register, "source": source, "milli": delta,
                "pieces": [list(p) for p in pieces]}
        if ledger.append(tx, self.store.outbox_add,
                         [money.charge_entry(acc, "charge", total, key, rs.ts_ms, data)]):
            ledger.set_carry(tx, mid, carry)
        ledger.save_mark(tx, mid, register, milli, rs.ts_ms, rs.id)
        return delta

    def _pieces(self, tx: Any, mid: str, start: int, end: int, source: str,
                delta: int) -> list[tuple[int, int]]:
        if end - start > MAX_APPORTION_MS:
            self.event(tx, "reading_gap_unapportioned", mid, {"from_ms": start, "to_ms": end},
                        end, "warning")
            return [(delta, self.book.price_at(mid, end, source))]
        return apportion(delta, self.book.segments(mid, start, end, source))

    # -- periodic work -------------------------------------------------------------------
    def tick(self, now_ms: int | None = None) -> None:
        """Standing charges, friendly hours ending, max-power timers, feedback tamper."""
        now = self.clock() if now_ms is None else now_ms
        for meter in self.settings.meters.values():
            with self.store.transaction() as tx:
                self._load_book(tx)
                self._standing(tx, meter, now)
                self.evaluate(tx, meter, now)
                self._check_feedback(tx, meter, now)

    def _standing(self, tx: Any, meter: MeterSettings, now: int) -> None:
        mid = meter.meter_id
        today = self.book.local(now).date()
        through = ledger.account(tx, mid).standing_through
        if through is None:  # first run: charge from today on, never for the past
            ledger.set_standing_through(tx, mid, (today - dt.timedelta(days=1)).isoformat())
            return
        day = dt.date.fromisoformat(through) + dt.timedelta(days=1)
        while day < today:
            amount = self.book.standing_for_day(mid, day)
            if amount:
                acc = ledger.account(tx, mid)
                entry = money.charge_entry(acc, "standing_charge", amount,
                                           f"standing:{mid}:{day.isoformat()}", now,
                                           {"day": day.isoformat()})
                ledger.append(tx, self.store.outbox_add, [entry])
            ledger.set_standing_through(tx, mid, day.isoformat())
            day += dt.timedelta(days=1)

    def restore_relays(self) -> None:
        """After a (re)start: drive every relay to what ledger, mode and state imply."""
        now = self.clock()
        for meter in self.settings.meters.values():
            with self.store.transaction() as tx:
                self._load_book(tx)
                machine = self.evaluate(tx, meter, now, force=True)
                self.event(tx, "relay_restored", meter.meter_id,
                            {"closed": machine.state["closed"]}, now, "info")

    # -- relay machine -------------------------------------------------------------------
    def machine(self, tx: Any, meter: MeterSettings) -> core.RelayMachine:
        """The meter's relay machine with its persisted state and effective settings."""
        overrides = ledger.settings(tx, meter.meter_id)
        cfg = core.default_relay_config()
        cfg.update(
            mode=overrides.get("mode", meter.mode),
            warn_limit=overrides.get("warn_limit", meter.warn_limit),
            reconnect_threshold=self.settings.reconnect_threshold,
            reconnect=self.settings.reconnect,
            max_power_w=meter.max_power_w,
            trip_after_ms=meter.trip_after_s * 1000,
            retry_delay_ms=meter.retry_delay_s * 1000,
            max_trips=meter.max_trips,
        )
        return core.RelayMachine(cfg, ledger.relay_state(tx, meter.meter_id))

    def evaluate(self, tx: Any, meter: MeterSettings, now: int,
                  force: bool = False, before: Callable[[core.RelayMachine], object] | None = None
                  ) -> core.RelayMachine:
        machine = self.machine(tx, meter)
        saved = dict(machine.state)
        if before is not None:
            before(machine)
        acc = ledger.account(tx, meter.meter_id)
        available = acc.credit - acc.debt
        events = machine.evaluate(available, self.friendly(now), self._power.get(meter.meter_id),
                                  now)
        for name, detail in events:
            data = {"reason": detail} if name.startswith("relay_") else {"detail": detail}
            data["credit"] = money_text(available)
            self.event(tx, name, meter.meter_id, data, now, SEVERITY.get(name, "info"))
        if machine.state != saved or ledger.relay_state(tx, meter.meter_id) is None:
            ledger.save_relay_state(tx, meter.meter_id, machine.state, now)
        self._drive(meter, machine.state["closed"], available < machine.config["warn_limit"],
                    force)
        return machine

    def _drive(self, meter: MeterSettings, closed: bool, alarm: bool, force: bool) -> None:
        try:
            if force or self.relays.commanded(meter.relay) != closed:
                self.relays.drive(meter.relay, closed)
            if meter.alarm and (force or self.relays.commanded(meter.alarm) != alarm):
                self.relays.drive(meter.alarm, alarm)
        except RelayIOError as exc:
            # the decision is persisted; the next tick drives the relay again
            LOGGER.error("relay_drive_failed", extra={"meter": meter.meter_id, "error": str(exc)})

    def friendly(self, now_ms: int) -> bool:
        """True inside the site's friendly hours (nights, weekends, holidays)."""
        local = self.book.local(now_ms)
        if local.date().isoformat() in self.settings.holidays:
            return True
        windows = [(set(d), s, e) for d, s, e in self.settings.friendly_windows]
        return core.in_windows(local.weekday(), local.hour * 60 + local.minute, windows)

    # -- inputs and tamper ---------------------------------------------------------------
    def on_input_change(self, change: InputEdge) -> None:
        """An input changed: log it; the reconnect button releases armed relays."""
        with self.store.transaction() as tx:
            self.event(tx, "input_changed", None, {"input": change.name,
                        "active": change.active}, change.ts_ms, "info")
            for meter in self.settings.meters.values():
                if change.name == meter.cover_input and change.active:
                    self.event(tx, "tamper_cover_opened", meter.meter_id,
                                {"input": change.name}, change.ts_ms, "error")
                if change.name == meter.feedback_input:
                    self._check_feedback(tx, meter, change.ts_ms)
            if change.name == self.settings.button_input and change.active:
                for meter in self.settings.meters.values():
                    self.evaluate(tx, meter, change.ts_ms,
                                   before=lambda m: m.press_button())

    def _check_feedback(self, tx: Any, meter: MeterSettings, now: int) -> None:
        if not meter.feedback_input:
            return
        commanded = self.relays.commanded(meter.relay)
        seen = self._read_input(meter.feedback_input)
        mismatch = commanded is not None and seen != commanded
        self._flag(tx, meter.meter_id, "tamper_contactor_mismatch", mismatch,
                   {"commanded_closed": commanded, "feedback_closed": seen}, now)

    def _check_consumption(self, tx: Any, meter: MeterSettings, delta: int, now: int) -> None:
        closed = self.relays.commanded(meter.relay)
        self._flag(tx, meter.meter_id, "tamper_consumption_while_open",
                   closed is False and delta >= TAMPER_MIN_MILLI, {"milli": delta}, now)

    def _flag(self, tx: Any, mid: str, kind: str, active: bool, data: dict[str, Any],
              now: int) -> None:
        """Raise a tamper event when a condition starts, and a `_cleared` one when it ends."""
        was = self._tamper.get((mid, kind), False)
        if active != was:
            self._tamper[(mid, kind)] = active
            self.event(tx, kind if active else kind + "_cleared", mid, data, now,
                        "error" if active else "info")

    def _read_input(self, name: str) -> bool:
        try:
            return self.relays.input_active(name)
        except RelayIOError as exc:
            LOGGER.warning("input_unreadable", extra={"input": name, "error": str(exc)})
            return False

    # -- helpers -------------------------------------------------------------------------
    def _load_book(self, tx: Any) -> None:
        """Tariffs and assignments set by command override the config (once per process)."""
        if self._book_loaded:
            return
        for tariff_id, definition in ledger.tariffs(tx).items():
            try:
                self.book.set_tariff(tariff_from_dict(tariff_id, definition, self.book.tz))
            except TariffError as exc:
                # stored before the bounds were enforced: the config tariff stays in force
                LOGGER.error("stored_tariff_refused", extra={"tariff": tariff_id,
                                                             "error": str(exc)})
        for meter in self.settings.meters.values():
            assigned = ledger.settings(tx, meter.meter_id).get("tariff_id")
            if assigned and assigned in self.book.tariffs:
                self.book.assign(meter.meter_id, assigned)
        self._book_loaded = True

    def event(self, tx: Any, kind: str, meter: str | None, data: dict[str, Any], ts_ms: int,
               severity: str) -> None:
        self.store.add_event(kind, meter_id=meter, data=data, ts_ms=ts_ms, severity=severity,
                             tx=tx)
        log = LOGGER.warning if severity in ("warning", "error") else LOGGER.info
        log(kind, extra={"meter": meter, **data})

    def append(self, tx: Any, entries: list[Entry]) -> list[int]:
        """Write ledger entries with their outbox rows (for commands and vouchers)."""
        return ledger.append(tx, self.store.outbox_add, entries)


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError, ArithmeticError):
        return None
