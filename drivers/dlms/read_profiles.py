"""Meter profiles for polled reading, as data (`profiles/read/<name>.json`): which registers
to read, where the clock, the load profile and the disconnector are, and the scalers a meter
does not send (used instead of attribute 3). `generic` is the IEC / DLMS UA one; a make's
profile adds its own objects and quirks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

from drivers.dlms.cosem import ScalerUnit, obis_bytes
from drivers.errors import ProfileError

READ_PROFILE_DIR: Final = Path(__file__).resolve().parent / "profiles" / "read"


@dataclass(frozen=True, slots=True)
class ReadProfile:
    name: str
    make: str
    registers: tuple[str, ...]
    clock: str | None
    load_profile: str | None
    disconnector: str | None
    scalers: dict[str, ScalerUnit]  # OBIS -> what the meter does not send
    billing: str | None = None  # the billing profile (monthly closures), 0-0:98.1.0.255


def _parse(name: str, raw: dict[str, Any]) -> ReadProfile:
    try:
        registers = tuple(str(code) for code in raw["registers"])
        for code in (*registers, *(raw.get(k) for k in ("clock", "load_profile",
                                                          "disconnector", "billing")
                                      if raw.get(k))):
            obis_bytes(str(code))
        scalers = {k: ScalerUnit(int(v[0]), v[1]) for k, v in raw.get("scalers", {}).items()}
        return ReadProfile(name, str(raw["make"]), registers, raw.get("clock"),
                           raw.get("load_profile"), raw.get("disconnector"), scalers,
                           raw.get("billing"))
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise ProfileError(f"DLMS read profile {name}: {error!r}") from None


@cache
def read_profiles() -> dict[str, ReadProfile]:
    return {path.stem: _parse(path.stem, json.loads(path.read_text(encoding="utf-8")))
            for path in sorted(READ_PROFILE_DIR.glob("*.json"))}


def read_profile(name: str, obis: tuple[str, ...] = ()) -> ReadProfile:
    """The named profile; a meter's own `obis` list replaces its registers."""
    profile = read_profiles().get(name)
    if profile is None:
        raise ProfileError(f"unknown DLMS profile {name!r} (known: {', '.join(read_profiles())})")
    if not obis:
        return profile
    return ReadProfile(profile.name, profile.make, obis, profile.clock, profile.load_profile,
                       profile.disconnector, profile.scalers, profile.billing)
