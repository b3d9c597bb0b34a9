"""Wires prepayment into the service: board outputs (or a meter's own breaker through its
protocol plugin's `breakers`), charging in the readings' transaction, the periodic tick, input
changes, USB-stick vouchers and the server's prepay commands."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from board.interface import Board, BoardError, InputSpec, OutputSpec, SafeState
from core.clock import Clock, SystemClock
from drivers.errors import DriverError
from drivers.plugin import Breakers, MeterView
from prepay.commands import PrepayCommands
from prepay.engine import PrepayEngine
from prepay.errors import CommandRefusedError, PrepayError, RelayIOError, VoucherRefused
from prepay.settings import PrepaySettings
from prepay.vouchers import MAX_VOUCHER_BYTES, VoucherReader
from storage import ledger
from storage.errors import StorageError
from storage.records import FLAG_METER_RECORD
from storage.store import Store

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from gateway.app.supervision import Supervisor

LOGGER = logging.getLogger(__name__)

# Standing charges, friendly hours ending and max-power timers need no finer resolution.
TICK_S = 10.0
# A stick is noticed within this time of being mounted.
MOUNT_POLL_S = 3.0

Handler = Callable[[dict[str, Any], Any], Awaitable[dict[str, Any]]]
EventSink = Callable[[str, str | None, dict[str, Any], str], None]  # kind, meter, data, severity


class BoardRelays:
    """The board as prepay's RelayIO: a board failure becomes prepay's own error, so the
    engine keeps its decision and drives again at the next tick."""

    def __init__(self, board: Board) -> None:
        self._board = board

    def drive(self, output: str, on: bool) -> None:
        try:
            self._board.set_output(output, on)
        except BoardError as exc:
            raise RelayIOError(str(exc)) from exc

    def commanded(self, output: str) -> bool | None:
        try:
            return self._board.output_state(output)
        except BoardError as exc:
            raise RelayIOError(str(exc)) from exc

    def input_active(self, name: str) -> bool:
        try:
            return self._board.read_input(name)
        except BoardError as exc:
            raise RelayIOError(str(exc)) from exc


class RoutedRelays:
    """Prepay's RelayIO over the board and the meters' own breakers: the names of the
    breaker meters' relays and feedback inputs go to their protocol's `Breakers`, the rest to
    the board."""

    def __init__(self, board: BoardRelays, breakers: Mapping[str, Breakers]) -> None:
        self._board, self._breakers = board, dict(breakers)

    def _for(self, name: str) -> BoardRelays | Breakers:
        return self._breakers.get(name, self._board)

    def drive(self, output: str, on: bool) -> None:
        self._for(output).drive(output, on)

    def commanded(self, output: str) -> bool | None:
        return self._for(output).commanded(output)

    def input_active(self, name: str) -> bool:
        return self._for(name).input_active(name)


def breaker_names(settings: PrepaySettings) -> dict[str, str]:
    """Relay and feedback names that are a meter's own breaker -> that meter id."""
    names: dict[str, str] = {}
    for meter in settings.meters.values():
        if meter.breaker == "meter":
            names[meter.relay] = meter.meter_id
            if meter.feedback_input == f"breaker:{meter.meter_id}":
                names[meter.feedback_input] = meter.meter_id
    return names


def open_breakers(settings: PrepaySettings, meters: Mapping[str, MeterView],
                  buses: Callable[[], Mapping[str, Any]], clock: Clock) -> dict[str, Breakers]:
    """Each breaker meter's protocol `breakers` (one per protocol), by relay / input name;
    `buses()` gives the opened buses once the service has them."""
    from gateway.wiring.protocols import plugin

    names = breaker_names(settings)
    by_protocol: dict[str, dict[str, str]] = {}
    for name, meter_id in names.items():
        by_protocol.setdefault(meters[meter_id].protocol, {})[name] = meter_id

    def lookup(meter_id: str) -> tuple[Any, MeterView]:
        view = meters[meter_id]
        bus = buses().get(view.bus)
        if bus is None:
            raise DriverError(f"meter {meter_id}: its bus {view.bus!r} is not open")
        return bus, view

    out: dict[str, Breakers] = {}
    for protocol, named in sorted(by_protocol.items()):
        found = plugin(protocol)
        assert found is not None and found.breakers is not None  # config validation
        outputs = {n: m for n, m in named.items() if settings.meters[m].relay == n}
        feedback = {n: m for n, m in named.items() if settings.meters[m].feedback_input == n}
        opened = found.breakers(lookup, outputs, feedback, clock)
        out.update(dict.fromkeys(named, opened))
    return out


def declare_prepay_io(board: Board, settings: PrepaySettings) -> None:
    """Supply relays hold their state when the process dies: a crash never opens a supply.
    A meter's own breaker is no board output."""
    outputs: list[OutputSpec] = []
    inputs: dict[str, InputSpec] = {}
    own = breaker_names(settings)
    for meter in settings.meters.values():
        if meter.relay not in own:
            outputs.append(OutputSpec(meter.relay, "relay", SafeState.HOLD, None))
        if meter.alarm:
            outputs.append(OutputSpec(meter.alarm, "alarm", SafeState.HOLD, None))
        for name in (meter.feedback_input, meter.cover_input, meter.generator_input):
            if name and name not in own:
                inputs[name] = InputSpec(name)
    if settings.button_input:
        inputs[settings.button_input] = InputSpec(settings.button_input)
    board.declare(outputs, list(inputs.values()))


def voucher_verifier(settings: PrepaySettings) -> Callable[[bytes], tuple[str, bytes]]:
    """COSE_Sign1 check of a voucher against the utility's key files, named by kid."""
    from uplink.keys import load_public_key

    return voucher_key_verifier(
        {kid: load_public_key(Path(path)) for kid, path in settings.voucher_keys.items()})


def voucher_key_verifier(keys: Mapping[str, Ed25519PublicKey]
                         ) -> Callable[[bytes], tuple[str, bytes]]:
    """COSE_Sign1 check of a voucher against `keys` by kid (keys rotate): VoucherRefused
    `garbage` for what is no COSE_Sign1, `forged` for an unknown kid or a bad signature."""
    from uplink.cose import BadMessage, BadSignature, parse_sign1, verify_sign1

    def verify(data: bytes) -> tuple[str, bytes]:
        try:
            msg = parse_sign1(data, max_bytes=MAX_VOUCHER_BYTES)
        except BadMessage as exc:
            raise VoucherRefused("garbage", str(exc)) from None
        kid = msg.kid.decode("utf-8", "replace")
        key = keys.get(kid)
        if key is None:
            raise VoucherRefused("forged", f"unknown voucher key {kid!r}")
        try:
            return kid, verify_sign1(msg, key)
        except BadSignature as exc:
            raise VoucherRefused("forged", str(exc)) from None

    return verify


def receipt_signer(key_file: Path, gateway_id: str) -> Callable[[bytes], bytes]:
    from uplink.cose import sign1
    from uplink.keys import load_private_key

    key = load_private_key(key_file)
    return lambda payload: sign1(payload, key, gateway_id.encode())


class PrepayWiring:
    def __init__(self, settings: PrepaySettings, store: Store, board: Board, gateway_id: str,
                 key_file: Path | None, wall: Callable[[], float] = time.time, *,
                 events: EventSink | None = None, meters: Mapping[str, MeterView] | None = None,
                 clock: Clock | None = None) -> None:
        """`meters` (id -> the site's meter) and `clock` are needed when a meter's own breaker
        is its supply relay; the opened buses come with `start`."""
        store.register_outbox_kind(ledger.OUTBOX_KIND, ledger.OUTBOX_PRIORITY,
                                   ledger.outbox_bodies)
        declare_prepay_io(board, settings)
        self.board = board
        self._events = events
        self._buses: Mapping[str, Any] = {}
        self.breakers = open_breakers(settings, meters or {}, lambda: self._buses,
                                      clock or SystemClock()) if breaker_names(settings) else {}
        self.engine = PrepayEngine(settings, store, RoutedRelays(BoardRelays(board),
                                                                 self.breakers),
                                   clock=lambda: int(wall() * 1000))
        self.engine.restore_relays()
        self.vouchers: VoucherReader | None = None
        if settings.voucher_keys and key_file is not None and key_file.exists():
            self.vouchers = VoucherReader(self.engine, gateway_id, voucher_verifier(settings),
                                          receipt_signer(key_file, gateway_id))
        elif settings.voucher_keys:
            LOGGER.warning("vouchers_disabled", extra={"reason": "no gateway key to sign "
                                                                 "receipts (gateway keys init)"})

    def charge(self, tx: Any, stored: list[Any]) -> None:
        # a meter's own records (a profile read later) are history: the readings taken now
        # carry the registers the charge moves on, in the order they were read
        live = [r for r in stored if not r.flags & FLAG_METER_RECORD]
        if live:
            self.engine.on_readings(tx, live)

    def handlers(self) -> dict[str, Handler]:
        """Prepay command handlers with their refusals in the uplink's terms."""
        from uplink.commands import CommandRefused

        def wrap(handler: Handler) -> Handler:
            async def call(args: dict[str, Any], ctx: Any) -> dict[str, Any]:
                try:
                    return await handler(args, ctx)
                except CommandRefusedError as exc:
                    raise CommandRefused(exc.reason) from None
            return call

        return {op: wrap(h) for op, h in PrepayCommands(self.engine).handlers().items()}

    def start(self, supervisor: Supervisor, buses: Mapping[str, Any] | None = None) -> None:
        """The tick is critical (standing charges and max-power trips are metering); inputs and
        vouchers are not: a broken stick reader must not get the gateway restarted. The
        meters' own breakers switch over `buses` (the opened buses); a meter that does not answer
        is retried, not a reason to restart."""
        self._buses = buses or {}
        for index, opened in enumerate(dict.fromkeys(self.breakers.values())):
            supervisor.spawn(f"prepay-breakers-{index}", opened.run, critical=False)
        supervisor.spawn("prepay-tick", self._ticks)
        supervisor.spawn("prepay-inputs", self._inputs, critical=False)
        supervisor.spawn("prepay-mounts", self._mounts, critical=False)

    async def _ticks(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.tick()

    def tick(self) -> None:
        """One tick; a refusing disk or a refused rule is recorded and the next tick tries again
        (the engine works from the ledger, so nothing is lost by a skipped tick)."""
        try:
            self.engine.tick()
        except (PrepayError, StorageError) as exc:
            data = {"error_type": type(exc).__name__, "reason": str(exc)}
            if self._events is None:
                LOGGER.error("prepay_tick_failed", extra=data)
            else:
                self._events("prepay_tick_failed", None, data, "error")

    async def _inputs(self) -> None:
        async for change in self.board.input_changes():
            with contextlib.suppress(PrepayError):
                self.engine.on_input_change(change)

    async def _mounts(self) -> None:
        if self.vouchers is None:
            return
        while True:
            for outcome in self.vouchers.on_mounts(self.board.mount_points()):
                LOGGER.info("voucher_outcome", extra={"outcome": str(outcome)})
            await asyncio.sleep(MOUNT_POLL_S)
