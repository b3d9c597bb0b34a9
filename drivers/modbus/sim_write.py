"""The simulator's side of register writes: which addresses a simulated meter holds, the FC6 /
FC16 writes it takes (only to registers its profile declares writable, within their range) and
keeps, and the held words served back by an FC3 read."""

from __future__ import annotations

from collections.abc import Iterable

from pymodbus.constants import ExcCodes

from drivers.modbus.decode import encode_span
from drivers.modbus.plan import plan_for
from drivers.modbus.profiles import Profile
from drivers.modbus.writable import Writable


def data_ranges(profile: Profile) -> list[tuple[int, int]]:
    """(first address, count) of the simulator's register memory: every read request of the
    plan and every writable register, merged where they touch or overlap (the server's memory
    is one block for both functions)."""
    spans = [(r.address, r.address + r.count) for r in plan_for(profile).requests]
    spans += [(w.span.address, w.span.address + w.span.words) for w in profile.writable]
    merged: list[list[int]] = []
    for low, high in sorted(spans):
        if merged and low <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return [(low, high - low) for low, high in merged]


def initial_words(profile: Profile) -> dict[int, int]:
    """What a fresh simulated meter holds in its writable registers: each one's lowest value."""
    held: dict[int, int] = {}
    for item in profile.writable:
        words = encode_span(item.span, item.low, rounding=True)
        held.update({item.span.address + i: word for i, word in enumerate(words)})
    return held


def _covering(profile: Profile, address: int, count: int) -> list[Writable] | None:
    """The writable registers a write of `count` words at `address` fills exactly, or None
    when it touches a word no writable register holds or cuts one in half."""
    touched = [w for w in profile.writable
               if w.span.address < address + count and address < w.span.address + w.span.words]
    words = sum(w.span.words for w in touched)
    inside = all(address <= w.span.address and w.span.address + w.span.words <= address + count
                 for w in touched)
    return touched if touched and inside and words == count else None


def accept_write(profile: Profile, held: dict[int, int], address: int, values: list[int],
                 keep: bool) -> ExcCodes | None:
    """Check a write like a meter does (ILLEGAL_ADDRESS off the writable map, ILLEGAL_VALUE
    outside a register's range) and keep its words in `held` (unless `keep` is False: a meter
    that echoes a write and ignores it)."""
    targets = _covering(profile, address, len(values))
    if targets is None:
        return ExcCodes.ILLEGAL_ADDRESS
    for target in targets:
        offset = target.span.address - address
        value = target.value_of(values[offset:offset + target.span.words])
        if value is None or not target.low <= value <= target.high:
            return ExcCodes.ILLEGAL_VALUE
    if keep:
        held.update({address + i: word for i, word in enumerate(values)})
    return None


def overlay(held: dict[int, int], start: int, address: int, count: int,
            registers: list[int]) -> Iterable[int]:
    """Put the held words inside [address, address + count) into the server's memory (the
    model's values of another function may have overwritten the shared block); the addresses."""
    inside = [a for a in held if address <= a < address + count]
    for addr in inside:
        registers[addr - start] = held[addr]
    return inside
