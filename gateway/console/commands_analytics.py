"""Console commands `intervals`, `balance`, `alarms`: the analytics as 80-column tables.

Times are shown in UTC like every console time (`format.when`); the day a command takes is the
site's local day (docs/analytics.md).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from gateway.console import format as fmt
from gateway.console.context import Context, UsageError


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{text!r} is not a date like 2026-11-01") from None


def _num(value: Decimal | None) -> str:
    return "-" if value is None else str(value)


async def cmd_intervals(ctx: Context, args: list[str]) -> None:
    if len(args) not in (1, 2):
        raise UsageError("intervals METER [YYYY-MM-DD]")
    day = _day(args[1]) if len(args) == 2 else None
    lines = await ctx.api.intervals(args[0], day)
    if not lines:
        ctx.say(f"No intervals of {args[0]} on that day (analytics run on cumulative"
                " registers once readings cross a boundary).")
        return
    rows = [[fmt.when(i.start)[11:], i.quantity, _num(i.value), i.quality,
             str(i.gap_s) if i.gap_s else "-", ",".join(i.flags) or "-"] for i in lines]
    ctx.say(fmt.table(["From", "Quantity", "Value", "Quality", "Gap s", "Flags"], rows))


async def cmd_balance(ctx: Context, args: list[str]) -> None:
    if len(args) > 1:
        raise UsageError("balance [YYYY-MM-DD]")
    lines = await ctx.api.balance(_day(args[0]) if args else None)
    if not lines:
        ctx.say("No balance results for that day (is [analytics.balance] configured?).")
        return
    rows = [[b.node if b.period == "day" else "", "day" if b.period == "day"
             else fmt.when(b.start)[11:16], b.status, _num(b.parent), _num(b.children),
             _num(b.loss), _num(b.loss_percent), ",".join(b.missing) or "-"] for b in lines]
    ctx.say(fmt.table(["Node", "Period", "Status", "Parent", "Children", "Loss", "Loss %",
                       "Missing"], rows))


async def cmd_alarms(ctx: Context, args: list[str]) -> None:
    if args:
        raise UsageError("alarms takes no arguments")
    lines = await ctx.api.alarms()
    if not lines:
        ctx.say("No alarms.")
        return
    rows = [["ACTIVE" if a.active else "", fmt.when(a.at), a.alarm, a.subject, a.severity,
             a.detail or "-"] for a in lines]
    ctx.say(fmt.table(["", "At", "Alarm", "Subject", "Severity", "Detail"], rows))
