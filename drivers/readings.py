"""What every driver returns: samples of named quantities with exact values."""

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one quantity (see core.quantities) as read from a meter.

    `value` is a Decimal for numbers (exact: never a binary float) or a str for non-numeric
    values (an ISO 8601 meter time, a serial number, an error register in hex).
    """

    quantity: str
    value: Decimal | str
    unit: str
    # a value the meter kept for an instant and hands over later (a load-profile interval,
    # a billing closure): that instant (UTC ms) and the series it belongs to, which the
    # gateway keeps a mark of (Context.records_until); None and "" for a value read now
    at_ms: int | None = None
    series: str = ""
