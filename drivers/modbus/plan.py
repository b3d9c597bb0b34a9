"""Range coalescing: a profile's registers -> the fewest read requests the meter accepts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from drivers.errors import ProfileError
from drivers.modbus.profiles import MODBUS_MAX_READ, Profile, Span


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One FC3/FC4 read: `count` registers from `address`."""

    function: int
    address: int
    count: int

    @property
    def end(self) -> int:
        return self.address + self.count


@dataclass(frozen=True, slots=True)
class SpanSlot:
    """Where a span's words sit in the responses: request index and offset into its words."""

    request: int
    offset: int
    words: int


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """The requests of one meter read and, per profile register, the slots of its spans."""

    requests: tuple[ReadRequest, ...]
    slots: tuple[tuple[SpanSlot, ...], ...]


def coalesce(
    spans: Iterable[tuple[int, int, int]], max_registers: int, *, max_gap: int = 0,
    even_aligned: bool = False,
) -> list[ReadRequest]:
    """Group (function, address, words) spans into the fewest requests, in address order.

    Spans are never split. Two spans share a request when the registers between them number at
    most `max_gap` (readable filler) and the request stays within `max_registers`. Greedy
    first-fit over sorted spans is optimal for this one-dimensional packing.
    """
    limit = min(max_registers, MODBUS_MAX_READ)
    requests: list[ReadRequest] = []
    current: ReadRequest | None = None
    for function, address, words in sorted(set(spans)):
        if even_aligned and (address % 2 or words % 2):
            raise ProfileError(f"span at {address} ({words} words) breaks even alignment")
        if words > limit:
            raise ProfileError(f"span at {address} ({words} words) exceeds {limit} registers")
        if current is not None and current.function == function and address < current.end:
            if address + words <= current.end:
                continue  # already covered (identical or nested span)
            raise ProfileError(f"span at {address} overlaps another span")
        if (
            current is not None
            and current.function == function
            and address - current.end <= max_gap
            and address + words - current.address <= limit
        ):
            current = ReadRequest(function, current.address, address + words - current.address)
            requests[-1] = current
            continue
        current = ReadRequest(function, address, words)
        requests.append(current)
    return requests


def _slot(requests: tuple[ReadRequest, ...], span: Span) -> SpanSlot:
    for index, req in enumerate(requests):
        if req.function == span.function and req.address <= span.address < req.end:
            return SpanSlot(index, span.address - req.address, span.words)
    raise ProfileError(f"span at {span.address} not covered by the plan")  # cannot happen


@cache
def plan_for(profile: Profile) -> ReadPlan:
    """The (cached) read plan of a profile."""
    spans = [(s.function, s.address, s.words) for reg in profile.registers for s in reg.spans]
    requests = tuple(coalesce(spans, profile.max_registers, max_gap=profile.max_gap,
                              even_aligned=profile.even_aligned))
    slots = tuple(tuple(_slot(requests, s) for s in reg.spans) for reg in profile.registers)
    return ReadPlan(requests, slots)
