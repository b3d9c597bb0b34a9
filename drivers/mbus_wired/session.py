"""The wired M-Bus master: request / answer exchanges over an abstract byte link.

The link is declared here (`MbusLink`) so the master runs on anything that moves bytes: the
transport kit's streams (`stream_link.ByteStreamLink`), the simulated bus (`sim.SimLink`) or a
test fake. Every wait is the link's read with the standard's answer timeout for the current
baud; a request that gets no answer or a garbled one is sent again with the same FCB (so the
meter repeats rather than moves on), at most `link.ATTEMPTS` times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final, Protocol

from drivers.errors import DeviceRejected, DeviceTimeout, FrameError
from drivers.mbus_wired import link
from drivers.mbus_wired import requests as rq
from drivers.mbus_wired.address import BROADCAST, BROADCAST_ANSWER, SELECTED, SelectPattern
from drivers.mbus_wired.responses import Ack, Answer, AppError, RspUd, parse_answer

MAX_TELEGRAMS: Final = 16   # a multi-telegram readout longer than this is a meter gone wrong
EndFinder = Callable[[bytes], int | None]


class MbusLink(Protocol):
    """Bytes both ways. `read_until` returns the bytes up to the end `finder` reports; when the
    line goes quiet first it returns what did arrive (b"" when nothing came within
    `first_byte_timeout_s`): the master tells silence, a collision and a cut frame apart."""

    @property
    def baud(self) -> int: ...

    async def write(self, data: bytes) -> None: ...

    async def read_until(self, finder: EndFinder, first_byte_timeout_s: float,
                         inter_byte_timeout_s: float) -> bytes: ...

    def set_baud(self, baud: int) -> None: ...


class NoAnswer(DeviceTimeout):
    """Nothing (or only the echo of the request) came back within the answer timeout."""


class GarbledAnswer(FrameError):
    """Bytes came back that are no answer: a collision, noise, a bad checksum, a cut frame."""

    def __init__(self, message: str, received: bytes) -> None:
        self.received = received
        super().__init__(f"{message} (received {received.hex()})")


class MeterRefused(DeviceRejected):
    """The meter answered with an application error (CI 0x70)."""

    def __init__(self, error: AppError) -> None:
        self.error = error
        super().__init__(f"meter {error.address}: {error.text}")


RETRYABLE: Final = (NoAnswer, GarbledAnswer)   # worth sending again; a refusal is not


@dataclass(frozen=True, slots=True)
class Silence:
    """No answer."""


@dataclass(frozen=True, slots=True)
class Garbled:
    received: bytes
    reason: str


Heard = Silence | Garbled | Answer


def classify(received: bytes, sent: bytes, *, strict: bool = True) -> Heard:
    """What came back for `sent`: nothing, garbage, or one answer (the echo stripped)."""
    rest = link.strip_echo(received, sent)
    if not rest:
        return Silence()
    try:
        return parse_answer(rest, strict=strict)
    except FrameError as exc:
        return Garbled(rest, str(exc))


def _never(buf: bytes) -> int | None:
    return None


class MbusMaster:
    """One bus, one master: resets, reads (multi-telegram), selects, commands. `strict=False`
    keeps a telegram whose records stop decoding part-way (its tail as one "unparsed" record)
    instead of refusing it (see responses.answer_of)."""

    def __init__(self, bus: MbusLink, *, attempts: int = link.ATTEMPTS,
                 max_telegrams: int = MAX_TELEGRAMS, strict: bool = True) -> None:
        self.bus = bus
        self.strict = strict
        self.attempts = attempts
        self.max_telegrams = max_telegrams
        self.fcb = link.FcbState()

    # ---- one exchange --------------------------------------------------------------------
    async def hear(self, request: rq.Request) -> Heard:
        """Send `request` once and classify what came back within the answer timeout."""
        sent = rq.build_request(request)
        await self.bus.write(sent)
        baud = self.bus.baud
        received = await self.bus.read_until(link.AnswerFinder(sent), link.answer_timeout_s(baud),
                                             link.inter_byte_timeout_s(baud))
        return classify(received, sent, strict=self.strict)

    async def _answer(self, make: Callable[[bool], rq.Request], address: int) -> Answer:
        """Send the request (built for the current FCB) until a valid answer comes; the FCB
        flips only after one did. Raises NoAnswer / GarbledAnswer after the last attempt."""
        error: NoAnswer | GarbledAnswer = NoAnswer(f"meter {address}: no answer")
        for _attempt in range(self.attempts):
            heard = await self.hear(make(self.fcb.current(address)))
            if isinstance(heard, Silence):
                error = NoAnswer(f"meter {address}: no answer in {self.attempts} attempts")
            elif isinstance(heard, Garbled):
                error = GarbledAnswer(f"meter {address}: {heard.reason}", heard.received)
            elif not isinstance(heard, Ack) and _from_other(heard, address):
                error = GarbledAnswer(f"answer from address {heard.address}, not {address}",
                                      b"")
            else:
                self.fcb.confirmed(address)
                if isinstance(heard, AppError):
                    raise MeterRefused(heard)
                return heard
        raise error

    async def _acknowledged(self, make: Callable[[bool], rq.Request], address: int) -> None:
        answer = await self._answer(make, address)
        if not isinstance(answer, Ack):
            raise FrameError(f"meter {address}: RSP_UD where E5 was expected", 0)

    async def quiet(self) -> bytes:
        """Wait out the broadcast idle time; returns (and drops) anything heard meanwhile."""
        idle = link.broadcast_idle_s(self.bus.baud)
        return await self.bus.read_until(_never, idle, idle)

    # ---- what callers use ----------------------------------------------------------------
    async def reset(self, address: int) -> None:
        """SND_NKE: the meter's link restarts (its next FCB is 1). No answer to 255."""
        self.fcb.reset(address)
        if address == BROADCAST:
            self.fcb.reset_all()
            await self.bus.write(rq.build_request(rq.SndNke(address)))
            await self.quiet()
            return
        await self._acknowledged(lambda _fcb: rq.SndNke(address), address)
        self.fcb.reset(address)   # FCV = 0: the answer to SND_NKE does not count the FCB

    async def read(self, address: int) -> list[RspUd]:
        """REQ_UD2 until the meter says no more records follow (DIF 0x1F toggles the FCB for
        the next telegram); every telegram of the readout, in order."""
        telegrams: list[RspUd] = []
        for _ in range(self.max_telegrams):
            answer = await self._answer(lambda fcb: rq.ReqUd2(address, fcb), address)
            if not isinstance(answer, RspUd):
                raise FrameError(f"meter {address}: E5 where an RSP_UD was expected", 0)
            telegrams.append(answer)
            if not answer.more_follow:
                return telegrams
        raise FrameError(f"meter {address}: more than {self.max_telegrams} telegrams", 0)

    async def select(self, pattern: SelectPattern) -> None:
        """Select the meter(s) matching `pattern`; the selected one answers at address 253."""
        self.fcb.reset(SELECTED)
        await self._acknowledged(lambda fcb: rq.SelectSecondary(pattern, fcb), SELECTED)
        self.fcb.reset(SELECTED)   # the newly selected meter starts its FCB afresh

    async def read_secondary(self, pattern: SelectPattern) -> list[RspUd]:
        await self.select(pattern)
        return await self.read(SELECTED)

    async def send(self, request: rq.Request) -> None:
        """A SND_UD-type request (set clock, application reset, primary address...) acknowledged
        by E5; to 255 nobody answers and the master waits out the idle time instead."""
        address = _address_of(request)
        if address == BROADCAST:
            await self.bus.write(rq.build_request(request))
            await self.quiet()
            return
        await self._acknowledged(lambda fcb: _with_fcb(request, fcb), address)

    async def switch_baud(self, address: int, baud: int) -> None:
        """CI 0xB8-0xBF: the meter acknowledges at the old baud, then both sides switch."""
        await self.send(rq.SwitchBaud(address, True, baud))
        self.bus.set_baud(baud)


def _from_other(answer: RspUd | AppError, address: int) -> bool:
    """An RSP_UD from another primary address than asked (253 / 254 answer with their own)."""
    if address in (SELECTED, BROADCAST_ANSWER):
        return False
    return answer.address != address


def _address_of(request: rq.Request) -> int:
    if isinstance(request, rq.SelectSecondary):
        return SELECTED
    return request.address


def _with_fcb(request: rq.Request, fcb: bool) -> rq.Request:
    if isinstance(request, rq.SndNke):
        return request
    return replace(request, fcb=fcb)
