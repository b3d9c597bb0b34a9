"""Invocation counters that survive a restart, in one small file beside the data (mode 0600).

Suite 0 needs an IV that never repeats under one key: the client's own invocation counter
must never be used twice. The file holds, per meter, a counter *reserved ahead*: before the
client uses counter n it makes sure the file already says a value above n (it writes
`n + RESERVE` atomically: temp file, fsync, rename, directory fsync). After a crash the client
starts at the reserved value, so a counter is skipped, never reused. The server's counter is
kept as the last one seen (a replayed or old APDU is refused, `InvocationCounterGuard`); it is
written at the end of each read (`flush`), not per APDU (SD cards wear).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Final

from drivers.dlms.security import InvocationCounterGuard
from drivers.errors import DriverError

LOGGER = logging.getLogger(__name__)
RESERVE: Final = 1000  # counters reserved per write: one file write every 1000 APDUs
MAX_COUNTER: Final = 0xFFFFFFFF
FILE_MODE: Final = 0o600
FORMAT: Final = 1


class CounterFileError(DriverError):
    """The invocation counter file is unreadable, malformed, or a counter is used up."""


class CounterFile:
    """Per meter id: the client's next invocation counter and the server's last seen."""

    def __init__(self, path: str | Path, reserve: int = RESERVE) -> None:
        self.path = Path(path)
        self._reserve = reserve
        self._reserved: dict[str, int] = {}  # what the file says: counters below may be used
        self._next: dict[str, int] = {}
        self._server: dict[str, int] = {}
        self._dirty = False
        self.writes = 0
        if self.path.exists():
            self._load()

    def next_client(self, meter: str) -> int:
        """A counter never used before; the file covers it before it is returned."""
        counter = self._next.get(meter, self._reserved.get(meter, 1))
        if counter > MAX_COUNTER:
            raise CounterFileError(f"meter {meter}: the invocation counter is used up; the "
                                   "keys must be changed")
        if counter >= self._reserved.get(meter, 1):
            self._reserved[meter] = min(counter + self._reserve, MAX_COUNTER + 1)
            self._save()
        self._next[meter] = counter + 1
        return counter

    def server_last(self, meter: str) -> int | None:
        return self._server.get(meter)

    def server_guard(self, meter: str) -> InvocationCounterGuard:
        def keep(counter: int) -> None:
            self._server[meter] = counter
            self._dirty = True

        return InvocationCounterGuard(lambda: self._server.get(meter), keep)

    def flush(self) -> None:
        """Write the server counters seen since the last write (after each read)."""
        if self._dirty:
            self._save()

    def _load(self) -> None:
        mode = self.path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CounterFileError(f"counter file {self.path} is accessible by group/others "
                                   f"(mode {mode & 0o777:o}); run: chmod 600 {self.path}")
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if raw.get("format") != FORMAT:
                raise ValueError(f"format {raw.get('format')!r}")
            for meter, entry in raw["meters"].items():
                self._reserved[meter] = _counter(entry["client_reserved"])
                if entry.get("server_last") is not None:
                    self._server[meter] = _counter(entry["server_last"])
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise CounterFileError(f"counter file {self.path}: {error}") from None

    def _save(self) -> None:
        meters = sorted(set(self._reserved) | set(self._server))
        body = {"format": FORMAT, "meters": {
            m: {"client_reserved": self._reserved.get(m, 1), "server_last": self._server.get(m)}
            for m in meters}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".dlms-counters-")
        try:
            os.fchmod(fd, FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(body, handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(self.path.parent)
        self._dirty = False
        self.writes += 1


def _counter(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNTER + 1:
        raise ValueError(f"counter {value!r} is not 0..2^32")
    return value


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_OPEN: dict[Path, CounterFile] = {}


def shared_counter_file(path: str | Path) -> CounterFile:
    """One `CounterFile` per path in the process: two buses on the default file must not
    overwrite each other's counters."""
    resolved = Path(path).resolve()
    if resolved not in _OPEN:
        _OPEN[resolved] = CounterFile(resolved)
    return _OPEN[resolved]
