"""The link master over a transport kit stream (serial over a board-opened fd, TCP, in-memory):
one request, one answer, with the FCB rule, the retry rule and the link state.

A request that gets no answer, a cut or garbled one (bad checksum, wrong length) is sent again
with the same FCB, at most `attempts` times; anything else is not retried. A NACK or an answer
that says the link is not reset puts the link DOWN: the next exchange resets it first.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Callable
from typing import Final

from drivers import ft12
from drivers.errors import ChecksumError, DeviceRejected, DeviceTimeout, FrameError
from drivers.iec102 import link
from drivers.transport.stream import ByteStream

LOGGER = logging.getLogger(__name__)
WHAT: Final = "IEC 60870-5-102 answer"
RETRYABLE: Final = (DeviceTimeout, FrameError)   # ChecksumError is a FrameError


class LinkState(enum.Enum):
    DOWN = "down"     # not reset (start, after a NACK or a failed exchange)
    UP = "up"         # reset: FCV frames may go


class LinkResetNeeded(DeviceRejected):
    """The meter refused a frame (NACK): its link must be reset before the next one."""


class LinkMaster:
    """The unbalanced master for one meter's link address on one stream."""

    def __init__(self, stream: ByteStream, address: int, *,
                 answer_timeout_s: float = link.ANSWER_TIMEOUT_S,
                 inter_byte_timeout_s: float = link.INTER_BYTE_TIMEOUT_S,
                 attempts: int = link.ATTEMPTS, meter: str | None = None) -> None:
        if not 0 <= address <= 0xFFFF:
            raise ValueError(f"link address {address} does not fit 2 octets")
        self.stream = stream
        self.address = address
        self.answer_timeout_s = answer_timeout_s
        self.inter_byte_timeout_s = inter_byte_timeout_s
        self.attempts = attempts
        self.meter = meter
        self.state = LinkState.DOWN
        self.fcb = link.FcbState()
        self.class1_pending = False
        self.counts: Counter[str] = Counter()

    async def reset(self) -> None:
        """Reset of remote link; the FCB starts again."""
        answer = await self._exchange(lambda _: link.reset_remote_link(self.address), fcv=False)
        if not isinstance(answer, link.Ack):
            raise DeviceRejected(f"link {self.address}: reset answered with {answer}")
        self.fcb.reset()
        self.state = LinkState.UP

    async def status(self) -> link.LinkStatus:
        """Request status of link."""
        answer = await self._exchange(lambda _: link.request_status(self.address), fcv=False)
        if not isinstance(answer, link.LinkStatus):
            raise FrameError(f"link {self.address}: status request answered with {answer}")
        return answer

    async def send(self, asdu: bytes) -> None:
        """SEND/CONFIRM user data; the meter must ACK it."""
        await self._ensure_up()
        answer = await self._exchange(lambda fcb: link.send_confirm(self.address, asdu, fcb),
                                      fcv=True)
        if isinstance(answer, link.Nack):
            self.state = LinkState.DOWN
            raise LinkResetNeeded(f"link {self.address}: user data refused (NACK)")
        if not isinstance(answer, link.Ack):
            raise FrameError(f"link {self.address}: user data answered with {answer}")

    async def poll(self, klass: int = 2) -> bytes | None:
        """Request class 1/2 data: the ASDU, or None when the meter has none (E5, NO_DATA)."""
        await self._ensure_up()
        answer = await self._exchange(
            lambda fcb: link.request_class(self.address, klass, fcb), fcv=True)
        if isinstance(answer, link.UserData):
            return answer.asdu
        if isinstance(answer, link.Ack | link.NoData):
            return None
        self.state = LinkState.DOWN
        raise LinkResetNeeded(f"link {self.address}: class {klass} request answered {answer}")

    async def _ensure_up(self) -> None:
        if self.state is LinkState.DOWN:
            await self.reset()

    async def _exchange(self, build: Callable[[bool], bytes], *, fcv: bool) -> link.Answer:
        last: Exception = DeviceTimeout(f"link {self.address}: no attempt made")
        self.stream.meter = self.meter
        for attempt in range(1, self.attempts + 1):
            self.stream.discard_input()   # a late answer to an earlier request is not this one's
            await self.stream.write(build(self.fcb.current))
            try:
                raw = await self.stream.read_message(link.frame_end, self.answer_timeout_s,
                                                     self.inter_byte_timeout_s, WHAT)
                answer = link.answer_of(ft12.parse_frame(raw, link.ADDRESS_WIDTH),
                                        self.address)
            except RETRYABLE as exc:
                last = exc
                self._count_failure(exc, attempt)
                continue
            if fcv:
                self.fcb.confirmed()
            self.class1_pending = bool(getattr(answer, "acd", False))
            self.counts["frames_ok"] += 1
            return answer
        self.state = LinkState.DOWN
        raise last

    def _count_failure(self, exc: Exception, attempt: int) -> None:
        kind = ("timeouts" if isinstance(exc, DeviceTimeout) else
                "checksum_errors" if isinstance(exc, ChecksumError) else "frame_errors")
        self.counts[kind] += 1
        LOGGER.info("iec102_retry", extra={"meter": self.meter, "attempt": attempt,
                                           "error_type": kind, "error": str(exc)})
