"""Secondary address search: the wildcard tree walk of EN 13757-3 annex (libmbus's scan).

A probe selects a pattern (CI 0x52 with F wildcards) and, when E5 comes back, reads the
selected meter (REQ_UD2 to 253). Several meters answering at once show as a collision: their
E5s overlay to one E5 (the same bits), but their RSP_UDs do not, so garbled bytes or a bad
checksum, on the select or on the read, mean "more than one"; a meter read through a wildcard
is selected once more by its exact address, since a collision can, rarely, check out as a
phantom telegram. A collision descends one digit: the next wildcard of the id is tried as 0-9.
Nothing back means no meter matches. The walk starts with the pattern itself, so an empty bus
costs one probe and a single meter three frames (select, read, exact select).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from drivers.mbus_wired import requests as rq
from drivers.mbus_wired.address import ID_DIGITS, SELECTED, WILD_DIGIT, SecondaryAddress
from drivers.mbus_wired.address import SelectPattern as Pattern
from drivers.mbus_wired.responses import Ack, FixedHeader, RspUd
from drivers.mbus_wired.session import Garbled, MbusMaster, Silence

DIGITS: Final = range(10)


class ProbeResult(Enum):
    EMPTY = "empty"           # nobody answered the select
    SINGLE = "single"         # one meter selected and read
    COLLISION = "collision"   # more than one (or an answer no single meter gives)


@dataclass(frozen=True, slots=True)
class FoundMeter:
    address: SecondaryAddress
    primary: int          # the primary address the meter answered with (0 if unset)
    telegram: RspUd       # its first telegram, read during the search


@dataclass
class SearchResult:
    meters: list[FoundMeter] = field(default_factory=list)
    unresolved: list[Pattern] = field(default_factory=list)  # collisions with every digit set
    probes: int = 0
    collisions: int = 0
    timed_out: bool = False   # the caller's time ran out: what was found until then
    pending: list[Pattern] = field(default_factory=list)   # still to probe, last one next
    started: bool = False
    base: Pattern | None = None   # what the search is over (None: every meter)

    @property
    def done(self) -> bool:
        return self.started and not self.pending

    def addresses(self) -> list[SecondaryAddress]:
        return [meter.address for meter in self.meters]


async def probe(master: MbusMaster, pattern: Pattern) -> tuple[ProbeResult, FoundMeter | None]:
    """Select `pattern` once, and read what it selected; one attempt each (a repeat would only
    double the time of every empty branch, and a lost meter shows up as a collision above)."""
    master.fcb.reset(SELECTED)
    heard = await master.hear(rq.SelectSecondary(pattern, master.fcb.current(SELECTED)))
    if isinstance(heard, Silence):
        return ProbeResult.EMPTY, None
    if not isinstance(heard, Ack):
        return ProbeResult.COLLISION, None
    master.fcb.reset(SELECTED)
    answer = await master.hear(rq.ReqUd2(SELECTED, master.fcb.current(SELECTED)))
    if isinstance(answer, Silence | Garbled) or not isinstance(answer, RspUd):
        return ProbeResult.COLLISION, None
    master.fcb.confirmed(SELECTED)
    header = answer.header
    secondary = header.secondary() if isinstance(header, FixedHeader) else None
    if secondary is None or not pattern.matches(secondary):   # a garble that checks out
        return ProbeResult.COLLISION, None
    if pattern != secondary.pattern() and not await _answers_alone(master, secondary):
        return ProbeResult.COLLISION, None
    return ProbeResult.SINGLE, FoundMeter(secondary, answer.address, answer)


async def _answers_alone(master: MbusMaster, secondary: SecondaryAddress) -> bool:
    """Whether a meter acknowledges a select of exactly this address. Two RSP_UDs of the
    same make overlay to bytes that differ in the id and, once in 256, still check out: a
    phantom id that matches the wildcards. Selecting it exactly is silent then."""
    master.fcb.reset(SELECTED)
    heard = await master.hear(rq.SelectSecondary(secondary.pattern(),
                                                 master.fcb.current(SELECTED)))
    return isinstance(heard, Ack)


async def search(master: MbusMaster, base: Pattern | None = None,
                 result: SearchResult | None = None) -> SearchResult:
    """Every meter matching `base` (default: all). Give `base` a manufacturer or medium to
    search only those ("secondary search by manufacturer / medium"). Meters go into `result`
    as they are found, and the patterns still to probe stay in `result.pending`: a caller that
    bounds the time keeps those found so far, and passing the same `result` again carries on
    where it stopped (the pattern being probed when time ran out is probed again)."""
    if result is None:
        result = SearchResult(base=base)
    while not result.done:
        await search_step(master, result)
    return result


async def search_step(master: MbusMaster, result: SearchResult) -> None:
    """Probe the next pattern of the walk (the first: the search's base); a caller that shares
    the bus with polls takes its lock for one step at a time."""
    if not result.started:
        result.pending, result.started = [result.base or Pattern()], True
    if not result.pending:
        return
    pattern = result.pending[-1]
    outcome, found = await probe(master, pattern)
    result.pending.pop()
    _record(result, pattern, outcome, found)


def _record(result: SearchResult, pattern: Pattern, outcome: ProbeResult,
            found: FoundMeter | None) -> None:
    """A probe's outcome into the result; a collision queues the next digit's ten patterns
    (0 probed first)."""
    result.probes += 1
    if outcome is ProbeResult.SINGLE and found is not None:
        result.meters.append(found)
        return
    if outcome is ProbeResult.EMPTY:
        return
    result.collisions += 1
    position = pattern.id.find(WILD_DIGIT)
    if position < 0 or position >= ID_DIGITS:
        result.unresolved.append(pattern)   # same id: manufacturer / version / medium differ
        return
    result.pending.extend(pattern.with_digit(position, digit) for digit in reversed(DIGITS))


@dataclass
class PrimaryScan:
    answered: list[int] = field(default_factory=list)   # one meter acknowledged SND_NKE
    garbled: list[int] = field(default_factory=list)    # bytes that are no E5: two meters?
    timed_out: bool = False


async def scan_primary(master: MbusMaster, addresses: range = range(0, 251),
                       scan: PrimaryScan | None = None) -> PrimaryScan:
    """SND_NKE to each primary address, once (libmbus's scan): E5 means a meter is there.
    Two meters on one address both answer E5, which overlays to one: read the address (two
    RSP_UDs collide) to tell."""
    scan = PrimaryScan() if scan is None else scan
    for address in addresses:
        heard = await master.hear(rq.SndNke(address))
        if isinstance(heard, Ack):
            scan.answered.append(address)
        elif not isinstance(heard, Silence):
            scan.garbled.append(address)
    return scan
