"""Small files the board keeps on the data partition: relay states, written atomically and rarely.

A relay state file is rewritten only when a relay actually changes (a handful of times a day), so
it costs the SD card nothing measurable; it is replaced with write-to-temp, fsync, rename, so a
power cut leaves either the old or the new file, never half of one.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from board.errors import BoardError

LOGGER = logging.getLogger(__name__)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a power cut leaves the old or the new content."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        raise BoardError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class OutputStateFile:
    """Last commanded state of each persisted output (relays, alarms), keyed by logical name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._states: dict[str, bool] = self._load()

    def _load(self) -> dict[str, bool]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            # A damaged file must not stop the gateway: relays then keep their physical state.
            self._log_unreadable(str(exc))
            return {}
        if not isinstance(raw, dict):
            self._log_unreadable("not an object")
            return {}
        return {str(k): v for k, v in raw.items() if isinstance(v, bool)}

    def _log_unreadable(self, error: str) -> None:
        LOGGER.error("output_state_unreadable", extra={"path": str(self.path), "error": error})

    def get(self, name: str) -> bool | None:
        return self._states.get(name)

    def set(self, name: str, on: bool) -> None:
        """Record a new state; the file is rewritten only when the state changed."""
        if self._states.get(name) is on:
            return
        self._states[name] = on
        payload = json.dumps(self._states, sort_keys=True, indent=1).encode()
        write_atomic(self.path, payload)
