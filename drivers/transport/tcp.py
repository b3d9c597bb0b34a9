"""A TCP stream (Modbus TCP gateways, IEC 62056-21 over a serial server): the same message
reads as a serial line, over an asyncio connection the kit opens itself (a socket is not a
device `board/` guards)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from drivers.errors import PortUnavailable
from drivers.transport.stream import ByteStream, LineSettings

READ_CHUNK: Final[int] = 4096
DRAIN_TIMEOUT_S: Final[float] = 5.0  # a peer that stops reading for this long is gone


class _Receiver(asyncio.Protocol):
    def __init__(self, stream: TcpStream) -> None:
        self._stream = stream

    def data_received(self, data: bytes) -> None:
        self._stream._received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stream._lost(f"connection lost ({exc})" if exc else "connection closed by peer")


class TcpStream(ByteStream):
    """Use `await TcpStream.connect(...)`; line settings are accepted and only recorded."""

    def __init__(self, *, name: str, protocol: str, meter: str | None = None) -> None:
        super().__init__(name=name, protocol=protocol, meter=meter)
        self._transport: asyncio.Transport | None = None
        self._settings = LineSettings()

    @classmethod
    async def connect(cls, host: str, port: int, *, protocol: str, timeout_s: float,
                      meter: str | None = None) -> TcpStream:
        stream = cls(name=f"{host}:{port}", protocol=protocol, meter=meter)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout_s):
                transport, _ = await loop.create_connection(lambda: _Receiver(stream), host, port)
        except (OSError, TimeoutError) as exc:
            raise PortUnavailable(f"{stream.name}: cannot connect: {exc!r}") from None
        stream._transport = transport
        return stream

    @property
    def settings(self) -> LineSettings:
        return self._settings

    def set_line(self, settings: LineSettings) -> None:
        self._settings = settings  # the serial server on the far side owns the real line

    async def _send(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            raise PortUnavailable(f"{self.name}: not connected")
        self._transport.write(data)

    def _shutdown(self) -> None:
        if self._transport is not None:
            with contextlib.suppress(Exception):
                self._transport.close()
            self._transport = None
