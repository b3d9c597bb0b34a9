"""Wireless M-Bus telegrams (and wired long frames) through the receiver's decode path, with
the link layer rebuilt after mutation: format A / B block CRCs, the L field, TPL mode 5
re-encrypted with the corpus key, the wired checksum. The flag byte picks the fix-ups.
Decoded telegrams also go through the quirks' paths (manufacturer CI layouts, PRIOS
descrambling with the corpus's Diehl default key, manufacturer data), their compact profiles
(series_of) and the billing samples the receiver stores."""

from __future__ import annotations

import contextlib
from typing import Final

from drivers.errors import DriverError
from drivers.mbus.profiles import series_of
from drivers.wmbus import security as sec
from drivers.wmbus.billing import telegram_readings_with_billing
from drivers.wmbus.builder import add_format_a_crcs
from drivers.wmbus.crc import crc_en13757
from drivers.wmbus.receiver import frame_sender
from drivers.wmbus.telegram import TelegramDecoder
from tests.fuzz import corpus
from tests.fuzz.harness import Target
from tests.fuzz.sinks import check_samples

LINK_MASK: Final = 0x03  # 0 as received, 1 CRCs stripped, 2 add format A CRCs, 3 format B
FIX_L: Final = 0x04
ENCRYPT: Final = 0x08
WIRED: Final = 0x10
PREFIX: Final = 0x20  # the body starts with a full frame decoded first (compact formats)
ELL: Final = 0x40  # ELL payload CRC recomputed, then AES-CTR encrypted with the corpus key
ELL_CIS: Final = {0x8D: 8, 0x8F: 16}
TOKENS: Final = (
    b"\x2f\x2f", b"\x7a", b"\x72", b"\x78", b"\x79", b"\x7b", b"\x8c", b"\x8d", b"\x8f", b"\x90",
    b"\x0c\x13", b"\x04\x13", b"\x0d\xfd", b"\x0f", b"\x1f", b"\x04\x6d", b"\x02\x6c", b"\xfd",
    b"\xfb", b"\xff" * 11, b"\x05\x2b", b"\x0d\x78\x08", b"\x44\x2d\x2c", b"\x68\x10\x10\x68",
    b"\x73", b"\xa0", b"\xa1", b"\xa2", b"\xb6", b"\x93\x1f", b"\x93\x13", b"\x93\x1e",
    b"\x0d\xff\x5f\x35", b"\x4b", b"\x68\x50", b"\x01\x06",   # Techem, Apator makes
)
_PRIOS_MAKES: Final = (b"\x24\x23", b"\x30\x4c", b"\xa5\x11")   # HYD, SAP, DME


def _mode5(frame: bytes, key_of: dict[str, bytes]) -> bytes:
    """Encrypt a plaintext CI 7A / 72 payload as TPL mode 5 (the header's config is set)."""
    if len(frame) < 15 or frame[10] not in (0x7A, 0x72):
        return frame
    long = frame[10] == 0x72
    head = 23 if long else 15
    if len(frame) < head:
        return frame
    m, a = (frame[15:17], frame[11:15] + frame[17:19]) if long else (frame[2:4], frame[4:10])
    key = key_of.get(a[:4][::-1].hex().upper())
    if key is None:
        return frame
    payload = frame[head:]
    payload += b"\x2f" * (-len(payload) % 16)
    blocks = min(len(payload) // 16, 15)
    acc = frame[head - 4]
    config = int.from_bytes(frame[head - 2:head], "little") & ~0x1FF0 | 5 << 8 | blocks << 4
    cipher = sec.cbc_encrypt(key, sec.mode5_iv(m, a, acc), payload[:16 * blocks])
    return (frame[:head - 2] + config.to_bytes(2, "little") + cipher + payload[16 * blocks:])


def _ell_parts(frame: bytes) -> tuple[int, bytes, bytes, bytes] | None:
    """(CRC position, M, A, session) of an ELL 8D / 8F frame, or None."""
    if len(frame) < 11 or frame[10] not in ELL_CIS:
        return None
    end = 11 + ELL_CIS[frame[10]]
    if len(frame) < end:
        return None
    m, a = (frame[13:15], frame[15:21]) if frame[10] == 0x8F else (frame[2:4], frame[4:10])
    return end - 2, m, a, frame[end - 6:end - 2]


def _ell(frame: bytes, key_of: dict[str, bytes]) -> bytes:
    parts = _ell_parts(frame)
    if parts is None:
        return frame
    crc_at, m, a, session = parts
    if not int.from_bytes(session, "little") >> 29:  # mark the session as encrypted
        session = session[:3] + bytes([session[3] | 0x20])
        frame = frame[:crc_at - 4] + session + frame[crc_at:]
    body = frame[crc_at + 2:]
    plain = crc_en13757(body).to_bytes(2, "little") + body
    key = key_of.get(frame[4:8][::-1].hex().upper())
    if key is not None:
        plain = sec.ctr_crypt(key, sec.ell_iv(m, a, frame[11], session), plain)
    return frame[:crc_at] + plain


def _ell_plaintext(frame: bytes, key: bytes | None) -> bytes | None:
    parts = _ell_parts(frame)
    if parts is None or not int.from_bytes(parts[3], "little") >> 29:
        return None
    crc_at, m, a, session = parts
    body = frame[crc_at:]
    if key is not None:
        body = sec.ctr_crypt(key, sec.ell_iv(m, a, frame[11], session), body)
    if crc_en13757(body[2:]) != int.from_bytes(body[:2], "little"):
        return None
    return frame[:crc_at] + body


def _format_b(frame: bytes) -> bytes:
    body = bytearray(frame)
    total = len(body) + (2 if len(body) <= 126 else 4)
    body[0] = (total - 1) & 0xFF
    if len(body) <= 126:
        return bytes(body) + crc_en13757(body).to_bytes(2, "big")
    first, rest = bytes(body[:126]), bytes(body[126:])
    return (first + crc_en13757(first).to_bytes(2, "big") + rest
            + crc_en13757(rest).to_bytes(2, "big"))


def _wired(frame: bytes) -> bytes:
    """68 L L 68 C A CI ... CS 16 with L and CS recomputed."""
    body = frame[4:-2] if len(frame) >= 6 else frame[4:]
    length = len(body) & 0xFF
    return bytes([0x68, length, length, 0x68]) + body + bytes([sum(body) & 0xFF, 0x16])


def link_frame(flags: int, frame: bytes) -> bytes:
    """The frame as the receiver gets it, after the fix-ups the flags ask for."""
    if flags & WIRED:
        return _wired(frame)
    if flags & ENCRYPT:
        frame = _mode5(frame, corpus.wmbus_keys())
    if flags & ELL:
        frame = _ell(frame, corpus.wmbus_keys())
    if flags & FIX_L and frame:
        frame = bytes([(len(frame) - 1) & 0xFF]) + frame[1:]
    link = flags & LINK_MASK
    if link == 2 and frame:
        return add_format_a_crcs(bytes([(len(frame) - 1) & 0xFF]) + frame[1:])
    if link == 3 and frame:
        return _format_b(frame)
    return frame


def _split(data: bytes) -> tuple[int, bytes | None, bytes]:
    flags, body = (data[0] if data else 0), data[1:]
    if flags & PREFIX and body:
        size = body[0] + 1
        return flags, body[:size], body[size:]
    return flags, None, body


def telegram_wire(data: bytes) -> bytes:
    flags, _, body = _split(data)
    return link_frame(flags, body)


MIN_RECEIVED: Final = 12  # WmbusReceiver._on_telegram drops shorter frames undecoded


def decode_telegram(decoder: TelegramDecoder, frame: bytes, stripped: bool) -> int:
    telegram = decoder.decode(frame, crcs_stripped=stripped)
    telegram.header_json()
    series_of(telegram.records)
    samples, _errors = telegram_readings_with_billing(telegram)
    return check_samples(samples)


def _keys() -> dict[str, bytes]:
    """The corpus keys, and the Diehl default key for the PRIOS meters' ids."""
    keys = dict(corpus.wmbus_keys())
    prios = corpus.wmbus_diehl_key()
    if prios is not None:
        for frame, key in corpus.wmbus_telegrams():
            if key is None and len(frame) > 10 and frame[2:4] in _PRIOS_MAKES \
                    and 0xA0 <= frame[10] <= 0xA3:
                keys.setdefault(frame[4:8][::-1].hex().upper(), prios)
    return keys


def run_telegram(data: bytes) -> str:
    """Link 1: a dongle's frame (receiver path); else the `lines` dongle and the decode CLI."""
    flags, prefix, body = _split(data)
    decoder = TelegramDecoder(_KEYS.get)
    if prefix is not None and len(prefix) >= MIN_RECEIVED:
        # the prefix teaches compact formats; a crash in it counts like any other
        with contextlib.suppress(DriverError):
            decoder.decode(prefix, crcs_stripped=True)
    frame = link_frame(flags, body)
    stripped = flags & LINK_MASK == 1
    if stripped and len(frame) < MIN_RECEIVED:
        return "short"
    if len(frame) >= MIN_RECEIVED:
        frame_sender(frame)
    decode_telegram(decoder, frame, stripped)
    return f"samples={min(decode_telegram(decoder, frame, stripped), 3)}"  # again: cached plans


def _plaintext(frame: bytes, key: bytes) -> bytes | None:
    """The plaintext form of a mode 5 corpus telegram (re-encrypted by the ENCRYPT flag)."""
    if len(frame) < 15 or frame[10] not in (0x7A, 0x72):
        return None
    long = frame[10] == 0x72
    head = 23 if long else 15
    config = int.from_bytes(frame[head - 2:head], "little")
    blocks = (config >> 4) & 0x0F
    if (config >> 8) & 0x1F != 5 or len(frame) < head + 16 * blocks or not blocks:
        return None
    m, a = (frame[15:17], frame[11:15] + frame[17:19]) if long else (frame[2:4], frame[4:10])
    plain = sec.decrypt_blocks(key, sec.mode5_iv(m, a, frame[head - 4]), frame[head:], blocks)
    return frame[:head] + plain if plain.startswith(b"\x2f\x2f") else None


def _seeds() -> list[bytes]:
    seeds = []
    for frame, key in corpus.wmbus_telegrams():
        stripped = len(frame) == frame[0] + 1
        seeds += [bytes([1 if stripped else 0]) + frame]
        if stripped:
            seeds += [bytes([2]) + frame, bytes([3]) + frame]
        plain = _plaintext(frame, key) if key and stripped else None
        if plain is not None:
            seeds.append(bytes([ENCRYPT | 1]) + plain)
        ell = _ell_plaintext(frame, key) if stripped else None
        if ell is not None:
            seeds.append(bytes([ELL | 1]) + ell)
    seeds += [bytes([WIRED]) + f for f in corpus.mbus_frames()]
    for sequence in corpus.wmbus_sequences():
        seeds.append(bytes([PREFIX | 1]) + sequence[0] + sequence[-1])
    return seeds


_KEYS: Final = _keys()

TARGETS: Final = (
    Target("wmbus_telegram", _seeds, run_telegram, tokens=TOKENS, protect=1, weight=1.5,
           wire=telegram_wire),
)
