"""The master's link on the transport kit: a `drivers.transport` ByteStream seen as `MbusLink`.

The kit's `read_message` raises DeviceTimeout when the line goes quiet before the finder sees
an end; the M-Bus master wants those bytes instead (silence, a collision and a cut frame are
three different things to the secondary search), so the adapter hands back what is pending.
"""

from __future__ import annotations

from drivers.errors import DeviceTimeout
from drivers.mbus_wired.session import EndFinder
from drivers.transport.stream import ByteStream

WHAT = "M-Bus answer"


class ByteStreamLink:
    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream

    @property
    def baud(self) -> int:
        return self.stream.baud

    async def write(self, data: bytes) -> None:
        self.stream.discard_input()   # a late answer to an earlier request is not this one's
        await self.stream.write(data)

    async def read_until(self, finder: EndFinder, first_byte_timeout_s: float,
                         inter_byte_timeout_s: float) -> bytes:
        try:
            return await self.stream.read_message(finder, first_byte_timeout_s,
                                                  inter_byte_timeout_s, WHAT)
        except DeviceTimeout:
            return self.stream.discard_input()

    def set_baud(self, baud: int) -> None:
        self.stream.set_baud(baud)
