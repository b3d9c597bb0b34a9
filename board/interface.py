"""The hardware interface every board backend implements (simulated now, Raspberry Pi later).

Callers name outputs and inputs by the logical names the config gives them ("relay-shop-12",
"gen-running"); a backend maps names to pins. Every output declares the state it must take when
the process dies (`SafeState`): a supply relay keeps its last commanded state, so a crash or a
restart never opens a tenant's supply by mistake.
"""

from __future__ import annotations

import abc
import enum
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from board.errors import BoardError

if TYPE_CHECKING:  # only for the capability signatures; they import board.errors, not this
    from board.disk import StartupCheck
    from board.modem import ModemPolicy, ModemWatch


class ClockNotSettable(BoardError):
    """The board cannot set the system clock; `why` is a stable code for the event record."""

    def __init__(self, why: str, detail: str, *, expected: bool = False) -> None:
        self.why = why
        # expected: the board has no clock of its own to set (nothing is wrong with it)
        self.expected = expected
        super().__init__(detail)


class SafeState(enum.Enum):
    HOLD = "hold"  # keep the last commanded state (latching relay, or line kept driven)
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class OutputSpec:
    name: str
    kind: str = "relay"  # "relay" | "led" | "alarm"
    safe_state: SafeState = SafeState.HOLD
    initial: bool | None = None  # None: restore the persisted state


@dataclass(frozen=True, slots=True)
class InputSpec:
    name: str
    active_low: bool = False
    debounce_ms: int = 20


@dataclass(frozen=True, slots=True)
class InputChange:
    name: str
    active: bool
    ts_ms: int


@dataclass(frozen=True, slots=True)
class SerialSpec:
    """How to open a serial line; `port` may be a /dev path, a by-id name or a pty path."""

    port: str
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"  # "N" | "E" | "O"
    stopbits: int = 1
    rs485: dict[str, Any] = field(default_factory=dict)  # enabled, rts_for_tx, delays


def hand_over_fd(port: Any, name: str) -> int:
    """A duplicate of an open port's descriptor, the port object closed: the exclusive lock
    and the RS-485 mode belong to the open file, which the duplicate keeps."""
    try:
        return os.dup(port.fileno())
    except OSError as exc:
        raise BoardError(f"serial port {name}: cannot hand over: {exc}") from exc
    finally:
        port.close()


class Board(abc.ABC):
    """Relays (closed=True means supply on), digital inputs, LEDs, watchdog and serial ports."""

    @abc.abstractmethod
    def declare(self, outputs: list[OutputSpec], inputs: list[InputSpec]) -> None:
        """Register the outputs and inputs the config uses; unknown names raise BoardError."""

    @abc.abstractmethod
    def set_output(self, name: str, on: bool) -> None:
        """Drive an output; for a supply relay, on=True closes the contact (supply on)."""

    @abc.abstractmethod
    def output_state(self, name: str) -> bool | None:
        """Last commanded (and persisted) state, None if never set."""

    @abc.abstractmethod
    def read_input(self, name: str) -> bool:
        """Debounced logical state of an input (active_low already applied)."""

    @abc.abstractmethod
    def input_changes(self) -> AsyncIterator[InputChange]:
        """Async stream of debounced input changes."""

    @abc.abstractmethod
    def kick_watchdog(self) -> None:
        """Tell the watchdog the service is alive."""

    @abc.abstractmethod
    def resolve_serial_port(self, port: str) -> str:
        """Turn a configured port name into the device path to open (by-id links resolved)."""

    @abc.abstractmethod
    def open_serial(self, spec: SerialSpec, timeout_s: float | None = None) -> Any:
        """Open and configure a serial port (termios, RS-485); returns a pyserial Serial."""

    def open_serial_fd(self, spec: SerialSpec) -> int:
        """Open a serial port like `open_serial` and hand over its raw descriptor: the
        drivers' transport kit reads it on the event loop and closes it. The only device open
        a driver needs (the kit never opens a path itself)."""
        return hand_over_fd(self.open_serial(spec, 0), spec.port)

    def mount_points(self) -> list[str]:
        """USB mass-storage mount points currently present (empty when none)."""
        return []

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release hardware; outputs take their declared safe state."""

    # -- capabilities ----------------------------------------------------------------------
    # What a board may have beyond outputs and inputs. The service asks the board rather than
    # comparing board kinds; a board without one answers None (set_clock: ClockNotSettable).

    def clock_probe(self) -> Callable[[], bool] | None:
        """Whether the wall clock is trustworthy yet (no RTC: wrong until NTP syncs); None when
        the host's clock is trusted."""
        return None

    def disk_check(self, data_dir: Path, database: Path) -> StartupCheck | None:
        """Free space, writability and the database header before the store opens (a worn SD
        card remounts read-only); None where the disk is the host's business."""
        return None

    def set_clock(self, when: datetime) -> None:
        """Set the system clock (a gateway with no network); ClockNotSettable says why not."""
        raise ClockNotSettable("not_supported", f"{type(self).__name__} cannot set the clock")

    def modem(self, policy: ModemPolicy) -> ModemWatch | None:
        """Supervision of a 4G modem under `policy`; None when the board has none to watch."""
        return None

    def error_ring_path(self, data_dir: Path) -> Path | None:
        """Where recent errors are kept on disk because the journal is in RAM; None when the
        system keeps its own logs."""
        return None

    def temperature_mc(self) -> int | None:
        """The board's (SoC) temperature in milli-degrees Celsius for the health record; None
        where the board has no sensor to offer (the simulated board)."""
        return None
