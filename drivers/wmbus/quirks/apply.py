"""Applying quirks: manufacturer-data records, Diehl PRIOS descrambling, compact format headers."""

from __future__ import annotations

from typing import Final

from drivers.errors import FrameError
from drivers.mbus.records import Record
from drivers.wmbus import security as sec
from drivers.wmbus.quirks.formats import Layout

PRIOS: Final = "prios"
APATOR_CBC: Final = "apator_cbc"
PRIOS_CHECK: Final = 0x4B      # first descrambled byte of a PRIOS payload
_PRIOS_DATA_AT: Final = 5      # scrambled bytes start 5 bytes after the CI field
_DATA_LEN: Final = (0, 1, 2, 3, 4, 4, 6, 8, 0, 1, 2, 3, 4, -1, 6, 8)


def manufacturer_records(layout: Layout, records: list[Record]) -> list[Record]:
    """Records a quirk's layout finds in the telegram's manufacturer data: the 0x0F block
    (kept as hex) or the first record with a manufacturer-specific VIF (an LVAR block)."""
    for record in records:
        data = _manufacturer_bytes(record)
        if data is not None:
            try:
                return layout.decode(data)
            except FrameError:
                return []    # the raw record stays: nothing is guessed
    return []


def _manufacturer_bytes(record: Record) -> bytes | None:
    if not isinstance(record.value, str):
        return None
    if record.kind == "manufacturer_data":
        return bytes.fromhex(record.value)
    if record.kind == "manufacturer_specific":
        # an LVAR below 0xC0 is decoded as latin-1 text, last byte first (EN 13757-3 text
        # order): latin-1 maps every byte to one character, so this gives the bytes back
        return record.value.encode("latin-1")[::-1]
    return None


def unprotect(cipher: str, header: bytes, body: bytes, key: bytes | None, meter: str) -> bytes:
    """The plain bytes after a manufacturer CI field for the quirk's `cipher`; `header` is the
    link layer M and A fields (8 bytes), `body` the frame from the CI field on."""
    if not cipher:
        return body[1:]
    if key is None:
        raise sec.KeyRequired(f"meter {meter}: manufacturer-encrypted ({cipher}), no key")
    if cipher == PRIOS:
        return descramble(header, body, key, meter)
    if cipher == APATOR_CBC:
        return apator_decrypt(header, body, key)
    raise FrameError(f"unknown manufacturer cipher {cipher}")


def apator_decrypt(header: bytes, body: bytes, key: bytes) -> bytes:
    """Apator NA-1: after the CI an access number and a status byte, then one AES-CBC block
    with the mode 5 IV (M, A, the access number x 8). There is no plaintext marker to check:
    a wrong key gives wrong values, so such a meter's key is to be checked at installation."""
    if len(body) < 19:
        raise FrameError("Apator NA-1 payload truncated")
    iv = sec.mode5_iv(header[0:2], header[2:8], body[1])
    return sec.decrypt_blocks(key, iv, body[3:19], 1)


def prios_key(key: bytes) -> int:
    """The 32-bit LFSR seed of a PRIOS key: the big-endian halves of its first 8 bytes xored."""
    if len(key) < 8:
        raise FrameError("PRIOS key shorter than 8 bytes")
    return int.from_bytes(key[0:4], "big") ^ int.from_bytes(key[4:8], "big")


def prios_stream(header: bytes, body: bytes, key: bytes, size: int) -> bytes:
    """The PRIOS keystream: the low byte of a 32-bit LFSR (taps 1, 2, 11, 31) after every 8
    steps, seeded by the key xor the M and A fields (`header`) and the CI plus 3 bytes."""
    state = prios_key(key)
    for word in (header[0:4], header[4:8], body[0:4]):
        state ^= int.from_bytes(word, "big")
    stream = bytearray()
    for _ in range(size):
        for _ in range(8):
            bit = ((state >> 1) ^ (state >> 2) ^ (state >> 11) ^ (state >> 31)) & 1
            state = ((state << 1) | bit) & 0xFFFFFFFF
        stream.append(state & 0xFF)
    return bytes(stream)


def descramble(header: bytes, body: bytes, key: bytes, meter: str) -> bytes:
    """Diehl PRIOS: the bytes from 5 after the CI field are XORed with the keystream; the first
    plain byte is 0x4B, anything else is a wrong key (or not a PRIOS telegram)."""
    if len(body) <= _PRIOS_DATA_AT:
        raise FrameError("PRIOS payload truncated")
    data = body[_PRIOS_DATA_AT:]
    stream = prios_stream(header, body, key, len(data))
    plain = bytes(a ^ b for a, b in zip(data, stream, strict=True))
    if plain[0] != PRIOS_CHECK:
        raise sec.WrongKey(f"wrong key or corrupt telegram (meter {meter})")
    return plain


def format_layout(headers: bytes) -> tuple[tuple[bytes, int], ...]:
    """(header, data size) per record of a DIF/VIF header string (a compact frame format)."""
    layout: list[tuple[bytes, int]] = []
    pos = 0
    while pos < len(headers):
        head = pos
        size = _DATA_LEN[headers[pos] & 0x0F]
        if size < 0 or headers[pos] in (0x0F, 0x1F, 0x2F):
            raise ValueError(f"no fixed-size record at {head} of a compact format")
        pos = _after_extensions(headers, pos)      # DIF and DIFEs
        pos = _after_extensions(headers, pos)      # VIF and VIFEs
        layout.append((headers[head:pos], size))
    return tuple(layout)


def _after_extensions(data: bytes, pos: int) -> int:
    while data[pos] & 0x80:
        pos += 1
    return pos + 1
