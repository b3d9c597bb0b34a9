"""USB dongle byte streams (iM871A HCI, AMB8465, rtl_wmbus lines) through the framers and on
into the telegram decoder, as WmbusReceiver does; checksums recomputed when the flag asks."""

from __future__ import annotations

import random
from typing import Final

from drivers.errors import DriverError
from drivers.wmbus import dongles as D
from drivers.wmbus.crc import crc_ccitt
from drivers.wmbus.telegram import TelegramDecoder
from tests.fuzz import corpus
from tests.fuzz.harness import Target
from tests.fuzz.t_wmbus import MIN_RECEIVED, decode_telegram

KIND_MASK: Final = 0x03  # 0 iM871A, 1 AMB8465 (RSSI appended), 2 AMB8465 without RSSI, 3 lines
FIX: Final = 0x04
TOKENS: Final = (b"\xa5", b"\xa5\x82\x03", b"\xa5\xc2\x03", b"\xa5\x01\x02\x00", b"\xff\x03",
                 b"\xff\x80", b"\n", b";1;1;", b";0;1;", b"0x", b"telegram=|", b"#", b"T1;1;1;")


def _fix_im871a(stream: bytes) -> bytes:
    out, pos = bytearray(stream), 0
    while (start := out.find(D.IM_START, pos)) >= 0 and start + 4 <= len(out):
        control, length = out[start + 1], out[start + 3]
        extra = (4 if control & D.IM_FLAG_TIMESTAMP else 0) + (1 if control & D.IM_FLAG_RSSI else 0)
        total = 4 + length + extra + (2 if control & D.IM_FLAG_CRC else 0)
        if start + total > len(out):
            break
        if control & D.IM_FLAG_CRC:
            check = crc_ccitt(out[start + 1:start + total - 2]).to_bytes(2, "big")
            out[start + total - 2:start + total] = check
        pos = start + total
    return bytes(out)


def _fix_amb(stream: bytes) -> bytes:
    out, pos = bytearray(stream), 0
    while (start := out.find(D.AMB_START, pos)) >= 0 and start + 4 <= len(out):
        total = 3 + out[start + 2] + 1
        if start + total > len(out):
            break
        check = 0
        for byte in out[start:start + total - 1]:
            check ^= byte
        out[start + total - 1] = check
        pos = start + total
    return bytes(out)


def dongle_wire(data: bytes) -> bytes:
    flags, stream = (data[0] if data else 0), data[1:]
    if flags & FIX and flags & KIND_MASK == 0:
        return _fix_im871a(stream)
    if flags & FIX and flags & KIND_MASK in (1, 2):
        return _fix_amb(stream)
    return stream


def _chunks(stream: bytes) -> list[bytes]:
    """The stream cut as a serial port might deliver it (deterministic per input)."""
    rng, out, pos = random.Random(len(stream)), [], 0
    while pos < len(stream):
        size = rng.choice((1, 3, 16, 64, 1024))
        out.append(stream[pos:pos + size])
        pos += size
    return out


def _lines(chunks: list[bytes]) -> list[D.DongleFrame]:
    """WmbusReceiver._frames for the `lines` dongle (ValueError: a bad_frames count)."""
    frames, pending = [], b""
    for chunk in chunks:
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()[-D.MAX_BUFFER:]
        for line in lines:
            try:
                parsed = D.parse_line(line.decode("ascii", "replace"))
            except ValueError:
                continue
            if parsed is not None:
                frames.append(parsed)
    return frames


def run_dongle(data: bytes) -> str:
    kind = (data[0] if data else 0) & KIND_MASK
    chunks = _chunks(dongle_wire(data))
    if kind == 3:
        frames = _lines(chunks)
    else:
        framer: D.Im871aFramer | D.Amb8465Framer = (
            D.Im871aFramer() if kind == 0 else D.Amb8465Framer(rssi_appended=kind == 1))
        frames = [f for chunk in chunks for f in framer.feed(chunk)]
    decoder = TelegramDecoder(corpus.wmbus_keys().get)
    decoded = 0
    for frame in frames:
        if frame.frame is None or len(frame.frame) < MIN_RECEIVED:
            continue
        try:
            decode_telegram(decoder, frame.frame, kind != 3)
            decoded += 1
        except DriverError:  # the receiver counts it and goes on with the next frame
            continue
    return f"frames={min(len(frames), 3)} decoded={min(decoded, 2)}"


def _seeds() -> list[bytes]:
    seeds = []
    for frame, _key in corpus.wmbus_telegrams()[:120]:
        if len(frame) != frame[0] + 1 or len(frame) > 250:
            continue
        body = frame[1:]
        im = D.im871a_encode(D.IM_EP_RADIOLINK, D.IM_WMBUS_MSG_IND, body, rssi=0x90)
        amb = D.amb8465_encode(D.AMB_DATA_IND, body + b"\xd0")
        seeds += [bytes([FIX]) + im + im, bytes([FIX | 1]) + amb,
                  bytes([FIX | 2]) + D.amb8465_encode(D.AMB_DATA_IND, body),
                  bytes([3]) + f"T1;1;1;2024-01-01 00:00:00.000;-60;;;0x{frame.hex()}\n".encode(),
                  bytes([3]) + frame.hex().encode() + b"\n"]
    seeds.append(bytes([FIX]) + D.im871a_encode(D.IM_EP_DEVMGMT, D.IM_PING_RSP))
    seeds.append(bytes([FIX | 1]) + D.amb8465_encode(D.AMB_SERIALNO_REQ | D.AMB_RESPONSE, b"1234"))
    return seeds


TARGETS: Final = (
    Target("wmbus_dongle", _seeds, run_dongle, tokens=TOKENS, protect=1, wire=dongle_wire),
)
