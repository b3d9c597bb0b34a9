"""Meters' own breakers behind prepay's relay interface (the shape of prepay/relays.py
`RelayIO`: drive, commanded, input_active; drivers import nothing of prepay).

`drive(output, on)` is called synchronously by the prepay engine inside its transaction: it
only records the wanted state. `apply_pending()` (or the `run()` loop) then sends remote
disconnect / reconnect over the meter's bus and reads the breaker back; `input_active` of the
meter's feedback name is the output_state the meter last reported, so the engine's
contactor-feedback check compares what it commanded with what the breaker did. A command the
meter did not take stays pending and is sent again after `RETRY_S`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from core.clock import Clock
from drivers.dlms.disconnect import BreakerState
from drivers.errors import DriverError

LOGGER = logging.getLogger(__name__)
RETRY_S: Final = 30.0

Apply = Callable[[str, bool], Awaitable[BreakerState]]  # meter id, connect -> state after


class UnknownOutput(DriverError, KeyError):
    """An output or input name that is no meter's breaker here."""


class MeterBreakers:
    """`outputs`: relay output name -> meter id; `feedback`: input name -> meter id."""

    def __init__(self, apply: Apply, outputs: Mapping[str, str],
                 feedback: Mapping[str, str]) -> None:
        self._apply = apply
        self._outputs, self._feedback = dict(outputs), dict(feedback)
        self._wanted: dict[str, bool] = {}
        self._pending: set[str] = set()
        self._reported: dict[str, BreakerState] = {}
        self.failures = 0

    # ---- the relay interface (synchronous, no I/O) ---------------------------------------
    def drive(self, output: str, on: bool) -> None:
        meter = self._meter(self._outputs, output)
        self._wanted[meter] = on
        self._pending.add(meter)

    def commanded(self, output: str) -> bool | None:
        return self._wanted.get(self._meter(self._outputs, output))

    def input_active(self, name: str) -> bool:
        state = self._reported.get(self._meter(self._feedback, name))
        return bool(state and state.output_state)

    # ---- the I/O side --------------------------------------------------------------------
    def reported(self, meter: str) -> BreakerState | None:
        return self._reported.get(meter)

    def note(self, meter: str, state: BreakerState) -> None:
        """A state read elsewhere (a poll, `dlms.breaker`): the feedback follows it."""
        self._reported[meter] = state

    async def apply_pending(self) -> None:
        for meter in sorted(self._pending):
            connect = self._wanted[meter]
            try:
                state = await self._apply(meter, connect)
            except DriverError as error:
                self.failures += 1
                LOGGER.warning("dlms_breaker_failed", extra={"meter": meter, "connect": connect,
                                                             "error": str(error)})
                continue
            self._reported[meter] = state
            if self._wanted.get(meter) == connect:  # not re-driven meanwhile
                self._pending.discard(meter)
            LOGGER.info("dlms_breaker_switched", extra={"meter": meter, **state.to_json()})

    async def run(self, clock: Clock, idle_s: float = 1.0) -> None:
        """Apply what prepay drove, retrying failures every `RETRY_S`."""
        while True:
            failures = self.failures
            await self.apply_pending()
            await clock.sleep(RETRY_S if self.failures > failures else idle_s)

    @staticmethod
    def _meter(names: Mapping[str, str], name: str) -> str:
        meter = names.get(name)
        if meter is None:
            raise UnknownOutput(f"{name!r} is no meter breaker (known: {', '.join(names)})")
        return meter
