"""The master's link on the transport kit: a `drivers.transport` ByteStream seen as `MbusLink`.

The kit's `read_message` raises DeviceTimeout when the line goes quiet before the finder sees
an end; the M-Bus master wants those bytes instead (silence, a collision and a cut frame are
three different things to the secondary search), so the adapter hands back what is pending.

`echo`: "auto" and "off" leave an echo to the master, which strips an exact one wherever it
comes; "on" (a converter known to echo every byte) waits for the echo after each write and
raises PortUnavailable when it does not come back: the converter is off or not on the line.
"""

from __future__ import annotations

from drivers.errors import DeviceTimeout, FrameError, PortUnavailable
from drivers.mbus_wired import link
from drivers.mbus_wired.session import EndFinder
from drivers.transport.stream import ByteStream

WHAT = "M-Bus answer"


class EchoMissing(PortUnavailable):
    """`converter_echo = "on"` and the converter sent nothing (or something else) back."""


class ByteStreamLink:
    def __init__(self, stream: ByteStream, *, echo: str = "auto") -> None:
        self.stream = stream
        self.echo = echo
        self.echoes_missing = 0

    @property
    def baud(self) -> int:
        return self.stream.baud

    async def write(self, data: bytes) -> None:
        self.stream.discard_input()   # a late answer to an earlier request is not this one's
        await self.stream.write(data)
        if self.echo == "on":
            await self._echo(data)

    async def _echo(self, sent: bytes) -> None:
        try:
            await self.stream.expect_echo(sent, link.answer_timeout_s(self.baud))
        except (DeviceTimeout, FrameError):
            self.echoes_missing += 1
            self.stream.discard_input()
            raise EchoMissing(f"{self.stream.name}: the level converter did not echo the "
                              "request (converter_echo = \"on\"): off, or not on the line"
                              ) from None

    async def read_until(self, finder: EndFinder, first_byte_timeout_s: float,
                         inter_byte_timeout_s: float) -> bytes:
        try:
            return await self.stream.read_message(finder, first_byte_timeout_s,
                                                  inter_byte_timeout_s, WHAT)
        except DeviceTimeout:
            return self.stream.discard_input()

    def set_baud(self, baud: int) -> None:
        self.stream.set_baud(baud)
