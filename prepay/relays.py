"""The relay and input interface prepay drives; the gateway adapts its board to it.

Prepay needs three things of the hardware: drive an output (supply relay, alarm), know what it
last drove, and read an input (contactor feedback, cover switch, generator, reconnect button).
Declaring them here keeps prepay free of the board package: tests and the MicroPython port hand
in their own, and the gateway wraps its `Board` (gateway/wiring/prepay.py). Each method raises
`prepay.errors.RelayIOError` when the hardware fails; the engine keeps its decision and tries
again at the next tick.
"""

from __future__ import annotations

from typing import Protocol


class RelayIO(Protocol):
    def drive(self, output: str, on: bool) -> None:
        """Switch an output: on=True closes a supply relay (supply on) or sounds an alarm."""

    def commanded(self, output: str) -> bool | None:
        """The state last driven (kept across restarts), None if never driven."""

    def input_active(self, name: str) -> bool:
        """The debounced logical state of an input."""


class InputEdge(Protocol):
    """One debounced change of an input, as the gateway's input stream reports it."""

    @property
    def name(self) -> str: ...

    @property
    def active(self) -> bool: ...

    @property
    def ts_ms(self) -> int: ...
