"""A simulated board for the demo, the tests and a laptop: relays and inputs in a state directory.

Relay states persist in `<state_dir>/outputs.json` (written atomically), like a latching relay
keeps its contact through a reboot. Inputs are read from `<state_dir>/inputs.json`, which a test
or a technician edits to "press a button" or "start the generator"; changes are noticed by
polling the file's mtime. Serial ports are opened for real (a pty works like a USB adapter).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from board.interface import (
    Board,
    BoardError,
    ClockNotSettable,
    InputChange,
    InputSpec,
    OutputSpec,
    SerialSpec,
)

LOGGER = logging.getLogger(__name__)

# How often the inputs file is checked: well under a human button press (~200 ms).
INPUT_POLL_S = 0.1


class SimulatedBoard(Board):
    def __init__(self, state_dir: str | Path) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._outputs: dict[str, OutputSpec] = {}
        self._inputs: dict[str, InputSpec] = {}
        self._state: dict[str, bool] = self._load("outputs.json")
        self.watchdog_kicks = 0
        self.last_kick: float | None = None

    # -- declaration -----------------------------------------------------------------------
    def declare(self, outputs: list[OutputSpec], inputs: list[InputSpec]) -> None:
        for out in outputs:
            self._outputs[out.name] = out
            if out.name not in self._state and out.initial is not None:
                self._state[out.name] = out.initial
        for inp in inputs:
            self._inputs[inp.name] = inp
        self._save_outputs()

    # -- outputs ---------------------------------------------------------------------------
    def set_output(self, name: str, on: bool) -> None:
        if name not in self._outputs:
            raise BoardError(f"output {name!r} is not declared on this board")
        if self._state.get(name) == on:
            return
        self._state[name] = on
        self._save_outputs()
        LOGGER.info("output_set", extra={"output": name, "on": on})

    def output_state(self, name: str) -> bool | None:
        if name not in self._outputs:
            raise BoardError(f"output {name!r} is not declared on this board")
        return self._state.get(name)

    # -- inputs ----------------------------------------------------------------------------
    def read_input(self, name: str) -> bool:
        spec = self._inputs.get(name)
        if spec is None:
            raise BoardError(f"input {name!r} is not declared on this board")
        raw = bool(self._load("inputs.json").get(name, False))
        return raw != spec.active_low

    def set_input(self, name: str, level: bool) -> None:
        """Drive an input's electrical level (tests and the demo use this)."""
        levels = self._load("inputs.json")
        levels[name] = level
        _write_json_atomic(self.state_dir / "inputs.json", levels)

    async def input_changes(self) -> AsyncIterator[InputChange]:
        # the levels themselves, not the file's mtime: two writes within one kernel tick
        # share an mtime, and the second change would be missed
        known = self._active_inputs()
        while True:
            await asyncio.sleep(INPUT_POLL_S)
            for name, active in self._active_inputs().items():
                if active != known.get(name):
                    known[name] = active
                    yield InputChange(name, active, int(time.time() * 1000))

    # -- watchdog, serial ------------------------------------------------------------------
    def kick_watchdog(self) -> None:
        self.watchdog_kicks += 1
        self.last_kick = time.monotonic()

    def resolve_serial_port(self, port: str) -> str:
        path = os.path.realpath(port)
        if not os.path.exists(path):
            raise BoardError(f"serial port {port!r} does not exist (adapter unplugged?)")
        return path

    def open_serial(self, spec: SerialSpec, timeout_s: float | None = None) -> Any:
        import serial

        try:
            return serial.Serial(self.resolve_serial_port(spec.port), baudrate=spec.baudrate,
                                 bytesize=spec.bytesize, parity=spec.parity,
                                 stopbits=spec.stopbits, timeout=timeout_s, exclusive=True)
        except (OSError, serial.SerialException) as exc:
            raise BoardError(f"cannot open serial port {spec.port!r}: {exc}") from exc

    def mount_points(self) -> list[str]:
        """Each directory under `<state_dir>/media` stands for a mounted USB stick."""
        media = self.state_dir / "media"
        if not media.is_dir():
            return []
        return sorted(str(p) for p in media.iterdir() if p.is_dir())

    def close(self) -> None:
        self._save_outputs()  # simulated relays HOLD: the persisted state is the safe state

    def set_clock(self, when: datetime) -> None:
        # the clock is the host's (a laptop, a test runner): never set it from here
        raise ClockNotSettable("simulated", "this is a simulated board: its clock is the host's",
                               expected=True)

    # -- persistence -----------------------------------------------------------------------
    def _load(self, name: str) -> dict[str, bool]:
        path = self.state_dir / name
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise BoardError(f"simulated board file {path} is unreadable: {exc}") from exc
        if not isinstance(data, dict):
            raise BoardError(f"simulated board file {path} must hold a JSON object")
        return {str(k): bool(v) for k, v in data.items()}

    def _active_inputs(self) -> dict[str, bool]:
        levels = self._load("inputs.json")
        return {name: bool(levels.get(name, False)) != spec.active_low
                for name, spec in self._inputs.items()}

    def _save_outputs(self) -> None:
        _write_json_atomic(self.state_dir / "outputs.json", self._state)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
