"""A simulated wired M-Bus: several meters on one pair of wires, as a pure object.

`SimBus.exchange(request, baud)` takes the bytes a master sent and returns what comes back
(`Reply`: after how long, which bytes), so a pty harness can host it as well as `SimLink`, a
virtual-time link the master runs on in tests and for the search figures. Meters answer their
primary address and, once selected by a pattern (CI 0x52), address 253; they honour the FCB
(the same FCB again repeats the last answer, a toggled one moves a multi-telegram meter on),
SND_NKE, set address, set clock, reset and baud switching. Several answering at once collide:
M-Bus slaves signal by drawing current, and a space (0) from any of them wins, so the wire
carries the bitwise AND of their bytes; equal E5s stay E5, RSP_UDs turn to garbage.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final

from drivers.errors import FrameError
from drivers.mbus_wired import link
from drivers.mbus_wired import requests as rq
from drivers.mbus_wired.address import (
    BROADCAST,
    BROADCAST_ANSWER,
    SELECTED,
    SecondaryAddress,
)
from drivers.mbus_wired.responses import FixedHeader, RspUd, build_answer, decode_rsp_ud
from drivers.mbus_wired.session import EndFinder

ACK: Final = b"\xe5"
REACTION_S: Final = 0.010   # a typical meter answers ~10 ms after the request (11 bits minimum)


@dataclass(frozen=True, slots=True)
class Reply:
    delay_s: float
    data: bytes   # b"": nobody answered


SILENCE: Final = Reply(0.0, b"")


@dataclass
class SimMeter:
    """One meter: its telegrams (RSP_UD frames from fixtures; every one but the last ending in
    DIF 0x1F), a primary address, and faults: `silent`, `delay_s` (slow)."""

    header: FixedHeader
    telegrams: list[bytes]          # record payloads, in order
    primary: int = 0
    delay_s: float = REACTION_S
    silent: bool = False
    baud: int = 2400
    selected: bool = False
    clock: datetime | None = None
    # link state: the FCB of the last REQ_UD2, the telegram sent, its bytes (for a repeat)
    _last_fcb: bool | None = field(default=None, init=False, repr=False)
    _index: int = field(default=0, init=False, repr=False)
    _last: bytes = field(default=b"", init=False, repr=False)
    _access: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._access = self.header.access_number

    @classmethod
    def from_frames(cls, frames: list[bytes], primary: int = 0, *,
                    delay_s: float = REACTION_S, silent: bool = False,
                    baud: int = 2400) -> SimMeter:
        """A meter answering with these RSP_UD frames' records, the first one's header."""
        first = decode_rsp_ud(frames[0])
        if not isinstance(first.header, FixedHeader):
            raise FrameError("a simulated meter needs a CI 0x72 telegram", 6)
        payloads = [decode_rsp_ud(frame).payload for frame in frames]
        return cls(first.header, payloads, primary, delay_s, silent, baud)

    def with_address(self, address: SecondaryAddress, primary: int) -> SimMeter:
        """A copy with another secondary address (many meters from one fixture)."""
        header = replace(self.header, id=address.id, manufacturer=address.manufacturer,
                         version=address.version, medium=address.medium)
        return replace(self, header=header, primary=primary, telegrams=list(self.telegrams))

    @property
    def secondary(self) -> SecondaryAddress:
        address = self.header.secondary()
        assert address is not None   # from_frames and with_address keep the id BCD
        return address

    def reset_link(self) -> None:
        self._last_fcb, self._index, self._last = None, 0, b""

    def answer_data(self, fcb: bool) -> bytes:
        """The RSP_UD for a REQ_UD2 with `fcb`: a repeat when the FCB did not toggle."""
        if self._last and self._last_fcb == fcb:
            return self._last
        if self._last_fcb is not None:
            self._index = (self._index + 1) % len(self.telegrams)
        else:
            self._index = 0
        self._last_fcb = fcb
        self._access = (self._access + 1) & 0xFF
        header = replace(self.header, access_number=self._access)
        rsp = RspUd(self.primary, link.RSP_UD, 0x72, header, self.telegrams[self._index])
        self._last = build_answer(rsp)
        return self._last


def collide(answers: list[bytes]) -> bytes:
    """What the wire carries when several slaves send at once: the bitwise AND per byte
    position, the longest one's tail alone."""
    size = max(len(a) for a in answers)
    out = bytearray(b"\xff" * size)
    for answer in answers:
        for index, byte in enumerate(answer):
            out[index] &= byte
    return bytes(out)


@dataclass
class SimBus:
    meters: list[SimMeter]
    echo: bool = False            # a level converter that sends the request back first
    requests: list[bytes] = field(default_factory=list)

    def exchange(self, request: bytes, baud: int) -> Reply:
        """What comes back for `request` sent at `baud` (meters at another baud hear noise)."""
        self.requests.append(request)
        reply = self._answer(request, baud)
        if self.echo:
            return Reply(reply.delay_s, request + reply.data)
        return reply

    def _answer(self, request: bytes, baud: int) -> Reply:
        try:
            parsed = rq.parse_request(request)
        except FrameError:
            return SILENCE   # a slave ignores a frame it cannot read
        listening = [m for m in self.meters if m.baud == baud]
        if isinstance(parsed, rq.SelectSecondary):
            for meter in listening:
                meter.selected = parsed.pattern.matches(meter.secondary)
                if meter.selected:
                    meter.reset_link()
        targets = [m for m in listening if _addressed(m, parsed)]
        answers = [(m.delay_s, self._act(m, parsed)) for m in targets if not m.silent]
        if _address(parsed) == BROADCAST or not answers:
            return SILENCE
        # The first to answer sets when the bytes start; the others overlay them.
        return Reply(min(delay for delay, _ in answers), collide([data for _, data in answers]))

    def _act(self, meter: SimMeter, request: rq.Request) -> bytes:
        match request:
            case rq.ReqUd2(_, fcb):
                return meter.answer_data(fcb)
            case rq.SndNke(address):
                meter.reset_link()
                if address == SELECTED:
                    meter.selected = False
            case rq.SetPrimaryAddress(_, _, new_address):
                meter.primary = new_address
            case rq.SetClock(_, _, moment):
                meter.clock = moment
            case rq.ApplicationReset():
                meter.reset_link()
            case rq.SwitchBaud(_, _, new_baud):
                meter.baud = new_baud   # acknowledged at the old baud (computed before this)
        return ACK


def _address(request: rq.Request) -> int:
    return SELECTED if isinstance(request, rq.SelectSecondary) else request.address


def _addressed(meter: SimMeter, request: rq.Request) -> bool:
    address = _address(request)
    if isinstance(request, rq.SelectSecondary):
        return meter.selected
    if address == SELECTED:
        return meter.selected
    return address in (BROADCAST, BROADCAST_ANSWER) or address == meter.primary


@dataclass
class SimLink:
    """The master's side of a SimBus in virtual time: `elapsed_s` adds every byte's wire time
    (8E1), each meter's reaction, and each timeout the master waits out. An answer slower than
    the answer timeout is lost (counted in `late`)."""

    bus: SimBus
    baud: int = 2400
    elapsed_s: float = 0.0
    sent_bytes: int = 0
    received_bytes: int = 0
    late: int = 0
    _pending: bytes = b""
    _delay_s: float = 0.0

    async def write(self, data: bytes) -> None:
        self.elapsed_s += link.wire_time_s(len(data), self.baud)
        self.sent_bytes += len(data)
        reply = self.bus.exchange(data, self.baud)
        self._pending, self._delay_s = reply.data, reply.delay_s

    async def read_until(self, finder: EndFinder, first_byte_timeout_s: float,
                         inter_byte_timeout_s: float) -> bytes:
        data, delay = self._pending, self._delay_s
        self._pending, self._delay_s = b"", 0.0
        if not data or delay > first_byte_timeout_s:
            self.late += bool(data)
            self.elapsed_s += first_byte_timeout_s
            return b""
        end = finder(data)
        taken = data if end is None else data[:end]
        self.elapsed_s += delay + link.wire_time_s(len(taken), self.baud)
        self.received_bytes += len(taken)
        if end is None:
            self.elapsed_s += inter_byte_timeout_s   # the master waits for the silence
        return taken

    def set_baud(self, baud: int) -> None:
        self.baud = baud
