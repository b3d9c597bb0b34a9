"""An in-memory stream for unit tests: golden chunks in, a record of every write out.

A test scripts what the device answers, chunk by chunk (split anywhere: at every byte, inside a
checksum), and the real session reads it through the same `read_message` the serial and TCP
streams use; no pty, no timing (httpcore's `AsyncMockStream` and pymodbus's null modem are the
models). Replies can wait for a write, so a request/response session sees its answer only after
it asked, the way a meter behaves.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from drivers.transport.stream import ByteStream, LineSettings


class MemoryStream(ByteStream):
    """`feed()` delivers at once; `reply_after_write()` queues chunks released by the next
    write. `writes` holds every write, `line_changes` every settings change."""

    def __init__(self, *, name: str = "memory", protocol: str = "test", meter: str | None = None,
                 settings: LineSettings | None = None) -> None:
        super().__init__(name=name, protocol=protocol, meter=meter)
        self._settings = settings or LineSettings()
        self._replies: deque[list[bytes]] = deque()
        self.writes: list[bytes] = []
        self.line_changes: list[LineSettings] = []

    @property
    def settings(self) -> LineSettings:
        return self._settings

    def set_line(self, settings: LineSettings) -> None:
        self._settings = settings
        self.line_changes.append(settings)

    def feed(self, *chunks: bytes) -> None:
        """Bytes arriving now (unasked, or before the session reads)."""
        for chunk in chunks:
            if chunk:
                self._received(chunk)

    def reply_after_write(self, chunks: Iterable[bytes]) -> None:
        """The answer to the next request not yet answered, delivered when it is written.
        An empty list is a device that stays silent for that request."""
        self._replies.append(list(chunks))

    def unplug(self, reason: str = "unplugged") -> None:
        self._lost(reason)

    async def _send(self, data: bytes) -> None:
        self.writes.append(data)
        if self._replies:
            self.feed(*self._replies.popleft())

    def _shutdown(self) -> None:
        self._replies.clear()


def split_every_way(data: bytes) -> list[list[bytes]]:
    """`data` as two chunks at every split point, plus one byte at a time: the chunkings a
    framer must read the same way."""
    splits = [[data[:i], data[i:]] for i in range(1, len(data))]
    return [[data], *splits, [data[i:i + 1] for i in range(len(data))]]
