"""A logging handler that keeps the last service log records for `log` and `log -f`."""

from __future__ import annotations

import collections
import logging
import threading
from datetime import UTC, datetime

from core.logs import TRACE, is_wire_logger
from gateway.console.api import LogLine

RING_SIZE = 2000  # about a day of normal logging; bounded so RAM use is fixed

# Attributes every LogRecord has; anything else came from `extra=` and is shown as k=v.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class LogRing(logging.Handler):
    """Attach to the root logger in the service; the ControlApi serves `lines()`."""

    def __init__(self, size: int = RING_SIZE, level: int = logging.INFO) -> None:
        # wire bytes (TRACE, only while switched on) are what `log` must show in the field;
        # everything else from `level` up
        super().__init__(TRACE)
        self._min_level = level
        self.addFilter(lambda r: r.levelno >= self._min_level or is_wire_logger(r.name))
        self._lines: collections.deque[LogLine] = collections.deque(maxlen=size)
        self._seq = 0
        self._ring_lock = threading.Lock()  # records may come from worker threads

    def emit(self, record: logging.LogRecord) -> None:
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        meter = extra.pop("meter", None)
        fields = " ".join(f"{k}={v}" for k, v in extra.items())
        with self._ring_lock:
            self._seq += 1
            self._lines.append(LogLine(
                seq=self._seq,
                ts=datetime.fromtimestamp(record.created, UTC),
                level=record.levelname.lower(),
                event=record.getMessage(),
                meter=None if meter is None else str(meter),
                fields=fields,
            ))

    def lines(self, after_seq: int | None, limit: int) -> list[LogLine]:
        """As `ControlApi.log_lines`: newer than after_seq (oldest first), or the last `limit`."""
        with self._ring_lock:
            items = list(self._lines)
        if after_seq is None:
            return items[-limit:] if limit > 0 else []
        return [line for line in items if line.seq > after_seq][:limit]
