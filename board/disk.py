"""SD-card care: start-up check of the data partition and database file, and a persisted ring
of recent errors (the journal lives in RAM, so without it a reboot would erase why it rebooted).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from board.errors import BoardError
from board.persist import write_atomic

LOGGER = logging.getLogger(__name__)

SQLITE_MAGIC = b"SQLite format 3\x00"
DEFAULT_MIN_FREE_BYTES = 200 * 1024 * 1024  # about a year of readings for 200 meters, plus slack
ERROR_RING_SIZE = 200  # enough to see the story of a bad night, small enough to rewrite whole
ERROR_RING_FLUSH_S = 300.0  # an error storm costs one SD write per 5 minutes, not one per line


@dataclass(frozen=True, slots=True)
class StartupCheck:
    data_dir: str
    free_bytes: int
    total_bytes: int
    database_bytes: int | None  # None: no database yet (first start)
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


def startup_check(data_dir: Path, database: Path, *,
                  min_free_bytes: int = DEFAULT_MIN_FREE_BYTES) -> StartupCheck:
    """Free space, writability and the database file's header; logs one `startup_disk_check`."""
    try:
        fs = os.statvfs(data_dir)
    except OSError as exc:
        raise BoardError(f"data directory {data_dir}: {exc.strerror}") from exc
    problems: list[str] = []
    free = fs.f_bavail * fs.f_frsize
    if free < min_free_bytes:
        problems.append(f"only {free} bytes free on {data_dir} (minimum {min_free_bytes})")
    if fs.f_flag & os.ST_RDONLY or not os.access(data_dir, os.W_OK):
        problems.append(f"{data_dir} is not writable (card worn out and remounted read-only?)")
    db_bytes = _database_problem(database, problems)
    check = StartupCheck(str(data_dir), free, fs.f_blocks * fs.f_frsize, db_bytes, tuple(problems))
    level = logging.INFO if check.ok else logging.ERROR
    LOGGER.log(level, "startup_disk_check", extra={
        "data_dir": check.data_dir, "free_bytes": free, "database_bytes": db_bytes,
        "problems": list(check.problems)})
    return check


def _database_problem(database: Path, problems: list[str]) -> int | None:
    try:
        size = database.stat().st_size
        with open(database, "rb") as handle:
            header = handle.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        return None
    except OSError as exc:
        problems.append(f"database {database}: unreadable: {exc.strerror}")
        return None
    if size and header != SQLITE_MAGIC:
        problems.append(f"database {database}: not an SQLite file (header {header[:16]!r})")
    elif size == 0:
        problems.append(f"database {database}: empty file (interrupted first start?)")
    return size


class ErrorRing(logging.Handler):
    """Keeps the last ERROR_RING_SIZE warnings/errors; rewrites its file at most every flush_s."""

    def __init__(self, path: Path, *, size: int = ERROR_RING_SIZE,
                 flush_s: float = ERROR_RING_FLUSH_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(level=logging.WARNING)
        self.path = path
        self._flush_s = flush_s
        self._clock = clock
        self._records: deque[dict[str, Any]] = deque(self._load(), maxlen=size)
        self._dirty = False
        self._last_flush = clock()

    def _load(self) -> list[dict[str, Any]]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError:  # absent on first start, or unreadable: start an empty ring
            return []
        records = []
        for line in lines:
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a torn line from an old power cut: drop it, keep the rest
            if isinstance(item, dict):
                records.append(item)
        return records

    def recent(self) -> list[dict[str, Any]]:
        return list(self._records)

    def emit(self, record: logging.LogRecord) -> None:
        self._records.append({
            "ts_ms": int(record.created * 1000), "level": record.levelname,
            "logger": record.name, "event": record.getMessage(),
            "meter": getattr(record, "meter", None),
        })
        self._dirty = True
        if self._clock() - self._last_flush >= self._flush_s:
            self.flush()

    def flush(self) -> None:
        if not self._dirty:
            return
        payload = "".join(json.dumps(r, sort_keys=True) + "\n" for r in self._records)
        try:
            write_atomic(self.path, payload.encode())
        except BoardError:
            return  # logging must never take the service down; retried at the next flush
        self._dirty = False
        self._last_flush = self._clock()

    def close(self) -> None:
        self.flush()
        super().close()
