"""The SoC temperature from the kernel's thermal zone (Raspberry Pi: thermal_zone0, the CPU)."""

from __future__ import annotations

from pathlib import Path

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")


def read_millicelsius(path: Path = THERMAL_ZONE) -> int | None:
    """Milli-degrees Celsius as the kernel gives them (an integer), or None when unreadable."""
    try:
        return int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
