"""IEC 60870-5-102: bytes through the FT1.2 scanner (2-octet address), the link answer parser,
the ASDU and object parsers, the JSON decoder and the simulated meter. Flag byte: bit 0
recomputes L and the checksum of the leading long frame (so the ASDU parsers are reached)."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Final
from zoneinfo import ZoneInfo

from drivers import ft12
from drivers.iec102 import link
from drivers.iec102.asdu import Asdu, Cause
from drivers.iec102.bodies import asdu_of, body_of
from drivers.iec102.decode import decode_frame
from drivers.iec102.objects import Password, Total, Totals, TotalsRange
from drivers.iec102.sim import SimMeter, default_events
from drivers.iec102.timetags import TimeA
from tests.fuzz.harness import Target

FIX: Final = 0x01
ZONE: Final = ZoneInfo("Europe/Madrid")
ORIGIN: Final = dt.datetime(2026, 10, 1)
TOKENS: Final = (b"\xe5", b"\x10", b"\x68", b"\x16", b"\x08", b"\x73", b"\x53", b"\x7b",
                 b"\xb7", b"\x7b", b"\x87", b"\x86", b"\x85", b"\x8c", b"\x0b", b"\x01\x00",
                 b"\x05", b"\x07", b"\x0a", b"\xff" * 4)


def _fixed(raw: bytes) -> bytes:
    if len(raw) < 6 or raw[0] != ft12.LONG_START:
        return raw
    body = raw[4:-2][:ft12.MAX_L]
    return bytes([0x68, len(body), len(body), 0x68]) + body + bytes([sum(body) & 0xFF, 0x16])


def wire(data: bytes) -> bytes:
    flags, raw = (data[0], data[1:]) if data else (0, b"")
    return _fixed(raw) if flags & FIX else raw


def _frame(frame: ft12.Frame) -> None:
    with contextlib.suppress(ft12.FrameError):
        link.answer_of(frame)
    if isinstance(frame, ft12.LongFrame | ft12.ControlFrame):
        data = frame.data if isinstance(frame, ft12.LongFrame) else b""
        with contextlib.suppress(ft12.FrameError):
            asdu = Asdu.from_bytes(bytes([frame.ci]) + data)
            body = body_of(asdu)
            rebuilt = asdu_of(asdu.type_id, asdu.cause, asdu.meter_address,
                              asdu.record_address, body, asdu.negative)
            if body_of(rebuilt) != body:
                raise AssertionError(f"object round trip differs for type {asdu.type_id}")


def run(data: bytes) -> str:
    raw = wire(data)
    frames, _, _ = ft12.scan(raw, link.ADDRESS_WIDTH)
    for frame in frames:
        _frame(frame)
    with contextlib.suppress(ft12.FrameError):
        decode_frame(raw, ZONE)
    meter = SimMeter(1, 1, 7, ORIGIN, lambda: ORIGIN + dt.timedelta(days=40),
                     events=default_events(ORIGIN), need_reset=False)
    meter.exchange(link.send_confirm(1, asdu_of(183, Cause.ACTIVATION, 1, 0,
                                                Password(7)).to_bytes(), True))
    answer = meter.exchange(raw)
    return f"frames {len(frames)} answer {len(answer)}"


def _seeds() -> list[bytes]:
    end = TimeA.of(ORIGIN + dt.timedelta(days=2))
    start = TimeA.of(ORIGIN + dt.timedelta(days=1))
    asdus = [
        asdu_of(183, Cause.ACTIVATION, 1, 0, Password(7)),
        asdu_of(123, Cause.ACTIVATION, 1, 11, TotalsRange(1, 8, start, end)),
        asdu_of(11, Cause.REQUEST, 1, 11, Totals((Total(1, 4, 0), Total(7, 0, 0x80)), end)),
        Asdu(135, Cause.REQUEST, 1, 134, bytes.fromhex(
            "1474373b00c06e000000fb591c00ba5c000000e4bd0500db0600000000000000800000000080"
            "650100000f87f207120000000000800080e107120080610812"), 1),   # gisce's example
        Asdu(103, Cause.REQUEST, 1, 0), Asdu(187, Cause.ACTIVATION, 1, 0),
    ]
    frames = [link.send_confirm(1, a.to_bytes(), True) for a in asdus]
    frames += [link.build_answer(link.UserData(a.to_bytes()), 1) for a in asdus]
    frames += [link.reset_remote_link(1), link.request_class(1, 2, True), b"\xe5"]
    return [bytes([flags]) + f for f in frames for flags in (0, FIX)]


TARGETS: Final = (
    Target("iec102", _seeds, run, tokens=TOKENS, protect=1, wire=wire),
)
