"""Wired M-Bus: bytes on the wire through the FT1.2 scanner, the answer and request parsers, the
master's read (fed by a link that answers with the input, echo optional) and the simulated bus,
then the records' samples; `gateway mbus decode` (cli.decode_hex: a DriverError at most) and a
config address (meter_address: a ValueError at most) from the same bytes. Flag byte: bit 0
recomputes L and the checksum of the leading long frame (so the records are reached), bit 1
prepends the echo of the request."""

from __future__ import annotations

import contextlib
from collections.abc import Coroutine
from typing import Any, Final

from drivers import ft12
from drivers.errors import DriverError
from drivers.mbus.mapping import records_to_samples
from drivers.mbus_wired import requests as rq
from drivers.mbus_wired.cli import decode_hex
from drivers.mbus_wired.meter_address import parse_meter_address
from drivers.mbus_wired.responses import FixedHeader, RspUd, answer_of
from drivers.mbus_wired.session import EndFinder, MbusMaster, classify
from drivers.mbus_wired.sim import SimBus, SimMeter
from tests.fuzz import corpus
from tests.fuzz.harness import Target
from tests.fuzz.sinks import check_samples

FIX: Final = 0x01
ECHO: Final = 0x02
ADDRESS: Final = 0           # what the fake link's meter is asked as
REQUEST: Final = rq.build_request(rq.ReqUd2(ADDRESS, True))
TOKENS: Final = (
    b"\xe5", b"\x10", b"\x68", b"\x16", b"\x72", b"\x70", b"\x78", b"\x7a", b"\x1f", b"\x0f",
    b"\x2f", b"\x52", b"\x53", b"\x5b", b"\x7b", b"\xfd", b"\xfc", b"\xfb", b"\x04\x6d",
    b"\x0c\x13", b"\x8b" * 11, b"\xff" * 8,
)


def _fixed(raw: bytes) -> bytes:
    """The leading `68 L L 68` frame with L and CS recomputed over what follows."""
    if len(raw) < 6 or raw[0] != ft12.LONG_START:
        return raw
    body = raw[4:-2][:ft12.MAX_L]
    return bytes([0x68, len(body), len(body), 0x68]) + body + bytes([sum(body) & 0xFF, 0x16])


def _address(raw: bytes) -> int:
    """The meter the master asks: the one the leading long frame answers for."""
    return raw[5] if len(raw) > 5 and raw[0] == ft12.LONG_START else ADDRESS


def _request(raw: bytes) -> bytes:
    return rq.build_request(rq.ReqUd2(_address(raw), True))


def wire(data: bytes) -> bytes:
    flags, raw = (data[0], data[1:]) if data else (0, b"")
    if flags & FIX:
        raw = _fixed(raw)
    return _request(raw) + raw if flags & ECHO else raw


class _Link:
    """Answers every write with the fuzz input (then nothing): the master never waits."""

    baud = 2400

    def __init__(self, answer: bytes) -> None:
        self._answer = answer
        self._pending = b""

    async def write(self, data: bytes) -> None:
        self._pending, self._answer = self._answer, b""

    async def read_until(self, finder: EndFinder, first_byte_timeout_s: float,
                         inter_byte_timeout_s: float) -> bytes:
        data, self._pending = self._pending, b""
        end = finder(data)
        return data if end is None else data[:end]

    def set_baud(self, baud: int) -> None:
        self.baud = baud


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Drive a coroutine that never suspends (the fake link is synchronous)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise AssertionError("the master waited on a link that never blocks")


def _samples(answer: RspUd) -> int:
    medium = answer.header.medium if isinstance(answer.header, FixedHeader) else 0
    return check_samples(records_to_samples(list(answer.records), medium))


def run(data: bytes) -> str:
    raw = wire(data)
    request = _request(raw[len(REQUEST):] if data[:1] and data[0] & ECHO else raw)
    frames, _, _ = ft12.scan(raw)
    for frame in frames:
        try:
            answer = answer_of(frame)
        except ft12.FrameError:
            continue
        if isinstance(answer, RspUd):
            _samples(answer)
    classify(raw, request)
    SimBus([_SIM_METER], echo=bool(data[:1] and data[0] & ECHO)).exchange(raw, 2400)
    with contextlib.suppress(ft12.FrameError):
        rq.parse_request(raw)
    with contextlib.suppress(DriverError):
        decode_hex(raw.hex())
    with contextlib.suppress(ValueError):
        parse_meter_address(raw.decode("latin-1"))
    telegrams = _run(MbusMaster(_Link(raw), attempts=1).read(request[2]))
    return f"read {len(telegrams)}"


_SIM_METER = SimMeter(FixedHeader("12345678", 0x0477, 1, 7, 0, 0, 0),
                      [bytes.fromhex("0413F4010000")])


def _seeds() -> list[bytes]:
    frames = list(corpus.mbus_frames())
    frames += [rq.build_request(r) for r in (rq.SndNke(1), rq.ReqUd2(ADDRESS, True),
                                             rq.SelectSecondary(_SIM_METER.secondary.pattern(),
                                                                True))]
    return [bytes([flags]) + f for f in frames for flags in (0, FIX, FIX | ECHO)]


TARGETS: Final = (
    Target("mbus_wired", _seeds, run, tokens=TOKENS, protect=1, wire=wire),
)
