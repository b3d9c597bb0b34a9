"""Energy balance over a configured tree: loss = parent - sum(children) per interval.

A node is a meter with the meters below it (a transformer meter with its feeders, a feeder
with its tenants and common areas). An interval's balance is `complete` when the parent and
every child have a measured or interpolated value for it; a member missing it, or children of
another commodity than the parent, make it `incomplete` (stored, never a loss figure). Once a
member is `wait_intervals` ahead of an interval that is still short of members, it is decided
incomplete. Loss alarms: `alarm_after` complete intervals in a row above the node's threshold
raise, the first complete one at or below clears (gateway/analytics/alarms.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

WAIT_INTERVALS: Final = 4


@dataclass(frozen=True, slots=True)
class Node:
    meter_id: str
    children: tuple[str, ...]
    threshold_percent: Decimal = Decimal(5)
    alarm_after: int = 4
    mixed_kinds: bool = False  # a child of another commodity: always incomplete


@dataclass(frozen=True, slots=True)
class BalanceResult:
    node: str
    start_ms: int
    end_ms: int
    status: str  # complete | incomplete
    parent: Decimal | None
    children: Decimal | None
    loss: Decimal | None
    loss_percent: Decimal | None
    missing: tuple[str, ...] = ()


def loss_of(parent: Decimal, children: Decimal) -> tuple[Decimal, Decimal | None]:
    loss = parent - children
    percent = None if parent == 0 else (loss * 100 / parent).quantize(Decimal("0.01"))
    return loss, percent


@dataclass(slots=True)
class NodeBook:
    """The pending intervals of one node: member values by interval end."""

    node: Node
    pending: dict[int, dict[str, Decimal | None]] = field(default_factory=dict)
    starts: dict[int, int] = field(default_factory=dict)
    newest_end: int = 0
    over: int = 0  # complete intervals in a row above the threshold

    @property
    def members(self) -> tuple[str, ...]:
        return (self.node.meter_id, *self.node.children)

    def add(self, meter_id: str, start_ms: int, end_ms: int, value: Decimal | None,
            step_ms: int) -> list[BalanceResult]:
        self.pending.setdefault(end_ms, {})[meter_id] = value
        self.starts[end_ms] = start_ms
        self.newest_end = max(self.newest_end, end_ms)
        done = []
        for end in sorted(self.pending):
            got = self.pending[end]
            if len(got) == len(self.members) or end + WAIT_INTERVALS * step_ms < self.newest_end:
                done.append(self._result(self.starts.pop(end), end, self.pending.pop(end)))
        return done

    def _result(self, start: int, end: int, got: Mapping[str, Decimal | None]) -> BalanceResult:
        n = self.node
        missing = tuple(m for m in self.members if got.get(m) is None)
        parent = got.get(n.meter_id)
        values = [got.get(c) for c in n.children]
        children = None if any(v is None for v in values) else sum(
            (v for v in values if v is not None), Decimal(0))
        if missing or n.mixed_kinds or parent is None or children is None:
            return BalanceResult(n.meter_id, start, end, "incomplete", parent, children, None,
                                 None, missing)
        loss, percent = loss_of(parent, children)
        return BalanceResult(n.meter_id, start, end, "complete", parent, children, loss, percent)

    def over_threshold(self, result: BalanceResult) -> bool | None:
        """True once `alarm_after` complete intervals in a row were above the threshold, False
        at a complete one at or below it, None otherwise (incomplete, or above but not yet
        for long enough: no change, so an alarm active before a restart is not cleared by
        the count starting again)."""
        if result.status != "complete" or result.loss_percent is None:
            return None
        if result.loss_percent <= self.node.threshold_percent:
            self.over = 0
            return False
        self.over += 1
        return True if self.over >= self.node.alarm_after else None


def day_totals(results: Sequence[BalanceResult]) -> BalanceResult | None:
    """The balance of a run of intervals (a day): incomplete when any interval is."""
    if not results:
        return None
    first, last = results[0], results[-1]
    if any(r.status != "complete" for r in results):
        missing = tuple(sorted({m for r in results for m in r.missing}))
        return BalanceResult(first.node, first.start_ms, last.end_ms, "incomplete", None, None,
                             None, None, missing)
    parent = sum((r.parent for r in results if r.parent is not None), Decimal(0))
    children = sum((r.children for r in results if r.children is not None), Decimal(0))
    loss, percent = loss_of(parent, children)
    return BalanceResult(first.node, first.start_ms, last.end_ms, "complete", parent, children,
                         loss, percent)
