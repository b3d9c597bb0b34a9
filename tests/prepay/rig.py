"""A prepay test rig: real Store in a temp dir, the simulated board, a settable clock."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from board.interface import InputSpec, OutputSpec
from board.simulated import SimulatedBoard
from gateway.wiring.prepay import BoardRelays
from prepay.commands import PrepayCommands
from prepay.engine import PrepayEngine
from prepay.settings import settings_from_config
from storage import ledger
from storage.records import ReadingSet, StoredValue
from storage.store import Store

TZ = ZoneInfo("Europe/Berlin")
HOLIDAYS = ("2026-12-25",)


def local_ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(dt.datetime(year, month, day, hour, minute, tzinfo=TZ).timestamp() * 1000)


def working_hours_now() -> int:
    """10:00 site time on the latest working day up to today: outside the site's friendly hours
    (20:00-08:00, weekends, holidays) whenever the suite runs, yet near the real clock, so that
    vouchers dated from `time.time()` are valid. Tests that used the real clock here failed
    between 20:00 and 08:00 Berlin time and at weekends."""
    day = dt.datetime.now(TZ).date()
    while day.weekday() >= 5 or day.isoformat() in HOLIDAYS:
        day -= dt.timedelta(days=1)
    return local_ms(day.year, day.month, day.day, 10)


def site_config(**over: Any) -> dict[str, Any]:
    meters = {
        "shop-1": {"tariff": "flat", "relay": "relay-1", "alarm": "alarm-1",
                   "feedback_input": "aux-1", "cover_input": "cover-1", "warn_limit": "5.00"},
        "shop-2": {"tariff": "tou", "relay": "relay-2", "generator": "input",
                   "generator_input": "gen", "max_power_w": 1000, "trip_after_s": 60,
                   "retry_delay_s": 300, "max_trips": 2},
        "flat-3": {"tariff": "flat", "relay": "relay-3", "generator": "register",
                   "grid_register": "import_active_energy_t1",
                   "generator_register": "import_active_energy_t2"},
    }
    cfg: dict[str, Any] = {
        "timezone": "Europe/Berlin",
        "currency": "EUR",
        "debt_share_percent": 50,
        "emergency_credit": "10.00",
        "reconnect_threshold": "1.00",
        "friendly_hours": [{"days": "all", "start": "20:00", "end": "08:00"},
                           {"days": "weekend", "start": "00:00", "end": "24:00"}],
        "holidays": list(HOLIDAYS),
        "tariffs": {
            "flat": {"currency": "EUR", "versions": [
                {"effective_from": "2026-01-01", "price": "0.30", "standing_per_day": "0.50"}]},
            "tou": {"currency": "EUR", "versions": [
                {"effective_from": "2026-01-01", "price": "0.30", "generator_price": "0.80",
                 "bands": [{"days": "weekday", "start": "12:00", "end": "13:00",
                            "price": "0.10"}]}]},
        },
        "meters": meters,
    }
    cfg.update(over)
    return cfg


class Rig:
    def __init__(self, tmp: Path, config: dict[str, Any]) -> None:
        self.tmp = tmp
        self.now = local_ms(2026, 3, 4, 10)  # a Wednesday, 10:00: not friendly
        self.store = Store.open(tmp / "gw.db")
        self.store.register_outbox_kind(ledger.OUTBOX_KIND, ledger.OUTBOX_PRIORITY,
                                        ledger.outbox_bodies)
        self.board = SimulatedBoard(tmp / "board")
        self.board.declare(
            [OutputSpec(n) for n in ("relay-1", "relay-2", "relay-3")]
            + [OutputSpec("alarm-1", kind="alarm")],
            [InputSpec(n) for n in ("aux-1", "cover-1", "gen", "button")],
        )
        self.settings = settings_from_config(config)
        self.engine = PrepayEngine(self.settings, self.store, BoardRelays(self.board),
                                   lambda: self.now)
        self.commands = PrepayCommands(self.engine)

    def read(self, meter: str, energy: str | None = None, *, power: int | None = None,
             rid: int | None = None, **values: str) -> None:
        vals = [StoredValue(q, Decimal(v), "kWh") for q, v in values.items()]
        if energy is not None:
            vals.append(StoredValue("import_active_energy", Decimal(energy), "kWh"))
        if power is not None:
            vals.append(StoredValue("active_power", Decimal(power), "W"))
        with self.store.transaction() as tx:
            self.engine.on_readings(tx, [ReadingSet(meter, self.now, tuple(vals), id=rid)])

    def account(self, meter: str) -> ledger.Account:
        return ledger.verify_account(self.store.db.conn, meter)

    def events(self, meter: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        return [(e.kind, dict(e.data)) for e in reversed(self.store.recent_events(500, meter))]

    def kinds(self, meter: str | None = None) -> list[str]:
        return [k for k, _ in self.events(meter)]

    async def topup(self, meter: str, amount: str, txid: str) -> dict[str, Any]:
        return await self.commands.credit_topup(
            {"meter": meter, "amount": amount, "txid": txid}, None)

    def advance(self, seconds: int) -> None:
        self.now += seconds * 1000

    def reopen(self) -> None:
        """A reboot: new store connection, board and engine over the same files."""
        self.store.close()
        self.store = Store.open(self.tmp / "gw.db")
        self.store.register_outbox_kind(ledger.OUTBOX_KIND, ledger.OUTBOX_PRIORITY,
                                        ledger.outbox_bodies)
        old = self.board
        self.board = SimulatedBoard(self.tmp / "board")
        self.board.declare(list(old._outputs.values()), list(old._inputs.values()))
        self.engine = PrepayEngine(self.settings, self.store, BoardRelays(self.board),
                                   lambda: self.now)
        self.commands = PrepayCommands(self.engine)
