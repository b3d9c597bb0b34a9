"""The [remote] table: how long a pushed config has to prove itself, how many versions are kept,
how often a health record goes up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.schema import Field, Problems, in_range, opt, validate_table

REMOTE_FIELDS: dict[str, Field] = {
    # every bus read, the store committing and an ack within this, or the old config is back
    "healthy_within_s": opt(int, 300, in_range(10, 3600)),
    # config versions kept under the data directory (config_history/)
    "history": opt(int, 10, in_range(2, 100)),
    # one health record this often; 0 sends none
    "health_interval_s": opt(int, 900, lambda v: None if v == 0 or 5 <= v <= 86_400
                             else f"must be 0 (off) or between 5 and 86400, got {v}"),
}


@dataclass(frozen=True, slots=True)
class RemoteSettings:
    healthy_within_s: int = 300
    history: int = 10
    health_interval_s: int = 900


def remote_section(section: Any, problems: Problems) -> RemoteSettings:
    """The [remote] table's settings (defaults when it is absent); problems name each key."""
    if section is None:
        return RemoteSettings()
    before = len(problems.lines)
    values = validate_table(section, REMOTE_FIELDS, "remote", problems)
    if len(problems.lines) > before or not values:
        return RemoteSettings()  # the config is refused anyway; the caller sees the problems
    return RemoteSettings(**values)
