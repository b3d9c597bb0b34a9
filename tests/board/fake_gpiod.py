"""A fake GPIO chip at the gpiod v2 library boundary (used where no gpio-sim kernel module is).

It mirrors the part of the libgpiod v2 API the backend calls (request_lines, LineSettings,
line.Direction/Value/Edge/Bias, LineRequest.get_value/set_value/reconfigure_lines/
read_edge_events/fd/release) and models the physical pin: level = value XOR active_low. Edge
events are signalled through a real pipe so the asyncio reader path is the real one.
"""

from __future__ import annotations

import contextlib
import enum
import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from board.gpio import GpiodApi


class Direction(enum.Enum):
    AS_IS = 1
    INPUT = 2
    OUTPUT = 3


class Value(enum.Enum):
    INACTIVE = 0
    ACTIVE = 1


class Edge(enum.Enum):
    NONE = 1
    RISING = 2
    FALLING = 3
    BOTH = 4


class Bias(enum.Enum):
    AS_IS = 1
    UNKNOWN = 2
    DISABLED = 3
    PULL_UP = 4
    PULL_DOWN = 5


@dataclass
class LineSettings:
    direction: Direction = Direction.AS_IS
    edge_detection: Edge = Edge.NONE
    bias: Bias = Bias.AS_IS
    active_low: bool = False
    debounce_period: timedelta = timedelta()
    output_value: Value = Value.INACTIVE


@dataclass(frozen=True)
class EdgeEvent:
    line_offset: int
    rising: bool


@dataclass
class FakeChip:
    """Physical levels of one chip's lines, and the history of every level change."""

    path: str
    levels: dict[int, int] = field(default_factory=dict)
    history: list[tuple[int, int]] = field(default_factory=list)
    request: FakeRequest | None = None

    def set_level(self, offset: int, level: int) -> None:
        if self.levels.get(offset, 0) != level:
            self.history.append((offset, level))
        self.levels[offset] = level

    def drive_input(self, offset: int, level: int) -> None:
        """An external signal changes an input pin."""
        before = self.levels.get(offset, 0)
        self.set_level(offset, level)
        req = self.request
        if req is None or before == level:
            return
        settings = req.settings.get(offset)
        if settings is not None and settings.edge_detection is not Edge.NONE:
            req.events.append(EdgeEvent(offset, rising=level == 1))
            os.write(req.write_fd, b"e")


class FakeRequest:
    def __init__(self, chip: FakeChip, config: dict[Any, LineSettings]) -> None:
        self.chip = chip
        self.settings: dict[int, LineSettings] = {}
        self.events: list[EdgeEvent] = []
        self.fd, self.write_fd = os.pipe()
        os.set_blocking(self.fd, False)
        self.released = False
        self.reconfigure_lines(config)

    def reconfigure_lines(self, config: dict[Any, LineSettings]) -> None:
        for key, settings in config.items():
            for offset in key if isinstance(key, tuple) else (key,):
                self.settings[offset] = settings
                if settings.direction is Direction.OUTPUT:
                    self._drive(offset, settings.output_value)

    def _drive(self, offset: int, value: Value) -> None:
        active_low = self.settings[offset].active_low
        self.chip.set_level(offset, value.value ^ int(active_low))

    def get_value(self, offset: int) -> Value:
        self._check(offset)
        level = self.chip.levels.get(offset, 0)
        return Value(level ^ int(self.settings[offset].active_low))

    def set_value(self, offset: int, value: Value) -> None:
        self._check(offset)
        if self.settings[offset].direction is not Direction.OUTPUT:
            raise OSError(1, "Operation not permitted")
        self._drive(offset, value)

    def read_edge_events(self) -> list[EdgeEvent]:
        with contextlib.suppress(BlockingIOError):
            os.read(self.fd, 4096)
        events, self.events = self.events, []
        return events

    def release(self) -> None:
        self.released = True
        os.close(self.fd)
        os.close(self.write_fd)
        self.chip.request = None

    def _check(self, offset: int) -> None:
        if self.released:
            raise OSError(9, "Bad file descriptor")
        if offset not in self.settings:
            raise OSError(22, "Invalid argument")


class FakeGpiod:
    """A set of chips and the `request_lines` entry point over them."""

    def __init__(self, *paths: str) -> None:
        self.chips = {path: FakeChip(path) for path in paths}
        self.consumers: list[str] = []

    def request_lines(self, path: str, consumer: str | None = None,
                      config: dict[Any, LineSettings] | None = None) -> FakeRequest:
        chip = self.chips.get(path)
        if chip is None:
            raise FileNotFoundError(2, "No such file or directory", path)
        if chip.request is not None:
            raise OSError(16, "Device or resource busy")
        self.consumers.append(consumer or "")
        chip.request = FakeRequest(chip, config or {})
        return chip.request

    def api(self) -> GpiodApi:
        return GpiodApi(request_lines=self.request_lines, LineSettings=LineSettings,
                        Direction=Direction, Value=Value, Edge=Edge, Bias=Bias)
