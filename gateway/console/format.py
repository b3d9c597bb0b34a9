"""Text layout for an 80-column dumb terminal: tables, times, sizes, money, durations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from core.money import NO_CURRENCY, Money

WIDTH = 80  # the narrowest terminal a technician's laptop is likely to show
GAP = "  "


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns; the widest columns are cut (with "~") until the table fits."""
    cols = len(headers)
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(cols)]
    budget = WIDTH - len(GAP) * (cols - 1)
    while sum(widths) > budget:
        widest = widths.index(max(widths))
        widths[widest] -= 1
    lines = []
    for row in cells:
        parts = [_fit(cell, widths[i]) for i, cell in enumerate(row)]
        lines.append(GAP.join(parts).rstrip())
    lines.insert(1, GAP.join("-" * w for w in widths))
    return "\n".join(lines)


def _fit(cell: str, width: int) -> str:
    if len(cell) > width:
        return cell[: max(width - 1, 0)] + "~"
    return cell.ljust(width)


def when(ts: datetime | None) -> str:
    """UTC time as "2026-11-23 17:08:23Z", "never" for None."""
    if ts is None:
        return "never"
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%d %H:%M:%SZ")


def duration(seconds: int) -> str:
    """"3 d 04 h 05 min" style, always with units."""
    days, rest = divmod(max(seconds, 0), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours:02d} h {minutes:02d} min"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s"


def size(num_bytes: int) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if num_bytes >= factor:
            return f"{Decimal(num_bytes) / factor:.1f} {unit}"
    return f"{num_bytes} B"


def money(amount: Decimal | None, currency: str) -> str:
    """"12.50 EUR": `Money.text` (cents, half-even) and the currency as configured, "-" for
    none (the code is shown as it is: a display never refuses a config's currency)."""
    if amount is None:
        return "-"
    return f"{Money.of(amount, NO_CURRENCY).text()} {currency}".strip()


def wrap(text: str, width: int = WIDTH) -> str:
    """Hard-wrap one paragraph at word boundaries (help texts, error messages)."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\n".join(lines)
