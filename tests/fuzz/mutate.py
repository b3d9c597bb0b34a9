"""A structured byte mutator: bit flips, interesting values, inserts, deletes, tokens, splices."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Final

INTERESTING_8: Final = (0x00, 0x01, 0x02, 0x0F, 0x10, 0x1F, 0x20, 0x40, 0x7F, 0x80, 0x81, 0xFE,
                        0xFF)
INTERESTING_16: Final = (0x0000, 0x0001, 0x007F, 0x0080, 0x00FF, 0x0100, 0x7FFF, 0x8000, 0xFFFE,
                         0xFFFF)
INTERESTING_32: Final = (0x00000000, 0x00000001, 0x7F7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000,
                         0x80000000, 0x7FFFFFFF, 0xFFFFFFFF, 0x00800000, 0x00000100, 0x3F800000)
# Text that breaks number parsers: long digit runs, huge exponents, special values.
TEXT_TOKENS: Final = (
    b"9" * 40, b"1" * 400, b"0" * 80, b"9" * 5000, b"1E+999999", b"1e-999999", b"9E+99999999",
    b"1E+40", b"1E-40", b"-0", b"+0", b"NaN", b"sNaN", b"-Infinity", b"Inf", b"0.00001",
    b"99999999999999999999999999999999999.9", b".5", b"5.", b"--1", b"1_000", b"\xc3\xa9",
    b"\x00", b"\xff\xfe", b"%s%n", b"${x}", b"'", b'"', b"\\", b"\r\n", b"\n", b"\t", b" " * 64,
)

Op = Callable[[bytearray, random.Random], None]


class Mutator:
    """Applies a short stack of random mutations to bytes after a protected prefix."""

    def __init__(self, rng: random.Random, pool: list[bytes], tokens: Sequence[bytes] = (),
                 protect: int = 0) -> None:
        self.rng = rng
        self.pool = pool  # live: inputs added by the runner are spliced in too
        self.tokens = tuple(tokens) + TEXT_TOKENS
        self.protect = protect
        self._ops: tuple[Op, ...] = (
            self._flip_bit, self._flip_bit, self._set8, self._set16, self._set32, self._arith,
            self._insert_random, self._delete, self._delete, self._duplicate, self._token,
            self._token, self._overwrite_token, self._splice, self._truncate, self._swap,
            self._digits, self._header_byte,
        )

    def mutate(self, data: bytes) -> bytes:
        buf = bytearray(data)
        count = 1
        while count < 16 and self.rng.random() < 0.5:
            count += 1
        for _ in range(count):
            self.rng.choice(self._ops)(buf, self.rng)
        return bytes(buf)

    # ---- positions ---------------------------------------------------------------------
    def _pos(self, buf: bytearray, rng: random.Random, room: int = 1) -> int | None:
        high = len(buf) - room
        if high < self.protect:
            return None
        return rng.randint(self.protect, high)

    def _insert_pos(self, buf: bytearray, rng: random.Random) -> int:
        return rng.randint(min(self.protect, len(buf)), len(buf))

    # ---- operations --------------------------------------------------------------------
    def _flip_bit(self, buf: bytearray, rng: random.Random) -> None:
        pos = self._pos(buf, rng)
        if pos is not None:
            buf[pos] ^= 1 << rng.randrange(8)

    def _set8(self, buf: bytearray, rng: random.Random) -> None:
        pos = self._pos(buf, rng)
        if pos is not None:
            buf[pos] = rng.choice(INTERESTING_8)

    def _setn(self, buf: bytearray, rng: random.Random, value: int, size: int) -> None:
        pos = self._pos(buf, rng, size)
        if pos is not None:
            buf[pos:pos + size] = value.to_bytes(size, rng.choice(("big", "little")))

    def _set16(self, buf: bytearray, rng: random.Random) -> None:
        self._setn(buf, rng, rng.choice(INTERESTING_16), 2)

    def _set32(self, buf: bytearray, rng: random.Random) -> None:
        self._setn(buf, rng, rng.choice(INTERESTING_32), 4)

    def _arith(self, buf: bytearray, rng: random.Random) -> None:
        pos = self._pos(buf, rng)
        if pos is not None:
            buf[pos] = (buf[pos] + rng.choice((-1, 1)) * rng.randint(1, 35)) & 0xFF

    def _insert_random(self, buf: bytearray, rng: random.Random) -> None:
        pos = self._insert_pos(buf, rng)
        size = rng.choice((1, 1, 2, 4, 8, 16, 64))
        if rng.random() < 0.5:
            chunk = bytes([rng.choice(INTERESTING_8)]) * size
        else:
            chunk = rng.randbytes(size)
        buf[pos:pos] = chunk

    def _delete(self, buf: bytearray, rng: random.Random) -> None:
        pos = self._pos(buf, rng)
        if pos is not None:
            del buf[pos:pos + rng.choice((1, 1, 2, 4, 16, 64))]

    def _duplicate(self, buf: bytearray, rng: random.Random) -> None:
        pos = self._pos(buf, rng)
        if pos is not None:
            chunk = buf[pos:pos + rng.randint(1, 32)]
            buf[pos:pos] = chunk * rng.choice((1, 2, 8))

    def _token(self, buf: bytearray, rng: random.Random) -> None:
        pos = self._insert_pos(buf, rng)
        buf[pos:pos] = rng.choice(self.tokens)

    def _overwrite_token(self, buf: bytearray, rng: random.Random) -> None:
        token = rng.choice(self.tokens)
        pos = self._pos(buf, rng, min(len(token), max(len(buf) - self.protect, 1)))
        if pos is not None:
            buf[pos:pos + len(token)] = token

    def _splice(self, buf: bytearray, rng: random.Random) -> None:
        if not self.pool:
            return
        other = rng.choice(self.pool)
        cut = self._insert_pos(buf, rng)
        start = rng.randint(min(self.protect, len(other)), len(other))
        buf[cut:] = other[start:start + rng.randint(1, 256)]

    def _truncate(self, buf: bytearray, rng: random.Random) -> None:
        if len(buf) > self.protect + 1:
            del buf[rng.randint(self.protect + 1, len(buf)):]

    def _swap(self, buf: bytearray, rng: random.Random) -> None:
        a, b = self._pos(buf, rng), self._pos(buf, rng)
        if a is not None and b is not None:
            buf[a], buf[b] = buf[b], buf[a]

    def _digits(self, buf: bytearray, rng: random.Random) -> None:
        """Lengthen a run of ASCII digits (numbers in text protocols) a lot."""
        starts = [i for i in range(self.protect, len(buf)) if 0x30 <= buf[i] <= 0x39]
        if starts:
            pos = rng.choice(starts)
            buf[pos:pos] = bytes([buf[pos]]) * rng.choice((8, 30, 300, 3000))

    def _header_byte(self, buf: bytearray, rng: random.Random) -> None:
        """Rarely touch the protected prefix (the target's selector and fix-up flags)."""
        if self.protect and buf:
            pos = rng.randrange(min(self.protect, len(buf)))
            buf[pos] = rng.randrange(256)
