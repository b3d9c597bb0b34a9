"""Wires prepayment into the service: board outputs, charging in the readings' transaction,
the periodic tick, input changes, USB-stick vouchers and the server's prepay commands."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from board.interface import Board, BoardError, InputSpec, OutputSpec, SafeState
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


def declare_prepay_io(board: Board, settings: PrepaySettings) -> None:
    """Supply relays hold their state when the process dies: a crash never opens a supply."""
    outputs: list[OutputSpec] = []
    inputs: dict[str, InputSpec] = {}
    for meter in settings.meters.values():
        outputs.append(OutputSpec(meter.relay, "relay", SafeState.HOLD, None))
        if meter.alarm:
            outputs.append(OutputSpec(meter.alarm, "alarm", SafeState.HOLD, None))
        for name in (meter.feedback_input, meter.cover_input, meter.generator_input):
            if name:
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
                 events: EventSink | None = None) -> None:
        store.register_outbox_kind(ledger.OUTBOX_KIND, ledger.OUTBOX_PRIORITY,
                                   ledger.outbox_bodies)
        declare_prepay_io(board, settings)
        self.board = board
        self._events = events
        self.engine = PrepayEngine(settings, store, BoardRelays(board),
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

    def start(self, supervisor: Supervisor) -> None:
        """The tick is critical (standing charges and max-power trips are metering); inputs and
        vouchers are not: a broken stick reader must not get the gateway restarted."""
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
