"""Meters' own breakers behind prepay's relay interface (the shape of prepay/relays.py
`RelayIO`: drive, commanded, input_active; drivers import nothing of prepay).

`drive(output, on)` is called synchronously by the prepay engine inside its transaction: it
only records the wanted state. `apply_pending()` (or the `run()` loop) then sends remote
disconnect / reconnect over the meter's bus and reads the breaker back; `input_active` of the
meter's feedback name is the output_state the meter last reported, so the engine's
contactor-feedback check compares what it commanded with what the breaker did. A command the
meter did not take stays pending and is sent again after `RETRY_S`. Every `READBACK_S` the
state of each breaker with nothing pending is read back (`read`), so a breaker closed behind
the gateway's back shows in the feedback. Until the meter has reported after the last command
(it is pending, or never reached) the feedback is what was commanded: no evidence of a
mismatch yet.

`open_breakers` is the plugin's `breakers` capability (drivers/plugin.py): the meters' buses
through a lookup, the commands on the bus lock between polls; each poll reads the breaker's
output_state too (drivers/dlms/reader.py), and the feedback is the newest state read.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from core.clock import Clock
from drivers.dlms.disconnect import BreakerState
from drivers.errors import DriverError

LOGGER = logging.getLogger(__name__)
RETRY_S: Final = 30.0
READBACK_S: Final = 60.0

Apply = Callable[[str, bool], Awaitable[BreakerState]]  # meter id, connect -> state after
Read = Callable[[str], Awaitable[BreakerState]]  # meter id -> state now
Seen = Callable[[str], bool | None]  # meter id -> output_state last read by anyone (a poll)


class UnknownOutput(DriverError, KeyError):
    """An output or input name that is no meter's breaker here."""


class MeterBreakers:
    """`outputs`: relay output name -> meter id; `feedback`: input name -> meter id."""

    def __init__(self, apply: Apply, outputs: Mapping[str, str],
                 feedback: Mapping[str, str], read: Read | None = None,
                 clock: Clock | None = None, seen: Seen | None = None) -> None:
        self._apply, self._read, self._clock, self._seen = apply, read, clock, seen
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
        meter = self._meter(self._feedback, name)
        state = self._reported.get(meter)
        seen = self._seen(meter) if self._seen is not None else None
        if seen is None and state is not None:
            seen = state.output_state
        if seen is None or meter in self._pending:
            return bool(self._wanted.get(meter))  # not asked yet: nothing to compare
        return seen

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

    async def read_back(self) -> None:
        """The state of every breaker with nothing pending, as the meter reports it."""
        if self._read is None:
            return
        for meter in sorted(set(self._outputs.values()) - self._pending):
            try:
                self._reported[meter] = await self._read(meter)
            except DriverError as error:
                LOGGER.warning("dlms_breaker_unread", extra={"meter": meter,
                                                             "error": str(error)})

    async def run(self, clock: Clock | None = None, idle_s: float = 1.0) -> None:
        """Apply what prepay drove, retrying failures every `RETRY_S`; read back every
        `READBACK_S`."""
        clock = clock or self._clock
        assert clock is not None, "a clock to run on"
        next_read = clock.monotonic()
        while True:
            failures = self.failures
            await self.apply_pending()
            if clock.monotonic() >= next_read:
                await self.read_back()
                next_read = clock.monotonic() + READBACK_S
            await clock.sleep(RETRY_S if self.failures > failures else idle_s)

    @staticmethod
    def _meter(names: Mapping[str, str], name: str) -> str:
        meter = names.get(name)
        if meter is None:
            raise UnknownOutput(f"{name!r} is no meter breaker (known: {', '.join(names)})")
        return meter


def open_breakers(lookup: Callable[[str], tuple[Any, Any]], outputs: Mapping[str, str],
                  feedback: Mapping[str, str], clock: Clock) -> MeterBreakers:
    """The dlms plugin's `breakers`: `lookup(meter id)` -> (its opened DlmsMeterBus, its
    MeterView); the disconnector is the read profile's."""
    from drivers.dlms.disconnect import read_state, switch

    def target(meter_id: str) -> tuple[Any, Any, str]:
        bus, view = lookup(meter_id)
        settings = bus.settings(view)
        obis = settings.profile.disconnector
        if not obis:
            raise DriverError(f"profile {settings.profile.name} names no disconnector")
        return bus, settings, obis

    async def apply(meter_id: str, connect: bool) -> BreakerState:
        bus, settings, obis = target(meter_id)
        state: BreakerState = await bus.driver.run(settings, lambda a: switch(a, connect, obis))
        bus.driver.breaker_seen[meter_id] = state.output_state
        return state

    async def read(meter_id: str) -> BreakerState:
        bus, settings, obis = target(meter_id)
        state: BreakerState = await bus.driver.run(settings, lambda a: read_state(a, obis))
        bus.driver.breaker_seen[meter_id] = state.output_state
        return state

    def seen(meter_id: str) -> bool | None:
        try:
            bus, _view = lookup(meter_id)
        except DriverError:
            return None  # the bus is not open yet
        value: bool | None = bus.driver.breaker_seen.get(meter_id)
        return value

    return MeterBreakers(apply, outputs, feedback, read, clock, seen)
