"""What the console's service side needs from the running gateway, declared by the console.

The composition root (gateway/wiring/) hands these ports to the console; the console never sees
`Service`. `BusDirectory` is implemented over the protocol plugins (gateway/wiring/protocols.py):
counters come typed from each plugin, and scanning is a capability a plugin may have.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gateway.console.api import ScanHit

# The counter names every protocol plugin reports; a plugin adds its own beside them.
STANDARD_COUNTERS = ("ok", "timeouts", "checksum", "other")


@dataclass(frozen=True, slots=True)
class BusInfo:
    bus_id: str
    protocol: str  # the plugin's name, as in the config
    can_scan: bool
    counters: Mapping[str, int] = field(default_factory=dict)  # STANDARD_COUNTERS + own, totals


class BusDirectory(Protocol):
    """The configured buses: their protocol, counters and optional scan."""

    def buses(self) -> list[BusInfo]:
        """Every configured bus with its counters summed over its meters, in config order."""
        ...

    def meter_counters(self, meter_id: str) -> Mapping[str, int]:
        """One meter's counters (STANDARD_COUNTERS and the plugin's own); {} if none yet."""
        ...

    async def scan(self, bus_id: str, seconds: int) -> list[ScanHit]:
        """Look for devices on the bus (a capability: raises ControlError naming the bus when
        its protocol cannot scan, or the bus does not exist)."""
        ...
