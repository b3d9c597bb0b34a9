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
    # software update (docs/update.md): where the versions live ("" = updates refused) ...
    "update_prefix": opt(str, ""),
    # ... and the release public key (PEM) that signs their manifests
    "release_key": opt(str, ""),
    # starts of a new version without becoming healthy before it is rolled back
    "update_max_starts": opt(int, 3, in_range(1, 20)),
    # the largest bundle accepted, MiB
    "update_max_mib": opt(int, 64, in_range(1, 1024)),
    # bytes a chunk, and the pause between chunks (bounds the rate on a metered link)
    "update_chunk_bytes": opt(int, 16384, in_range(1024, 32768)),
    "update_pause_ms": opt(int, 50, in_range(0, 60_000)),
    # a chunk not answered within this: the download stops, waits as long, and resumes
    "update_retry_s": opt(int, 30, in_range(3, 3600)),
}


@dataclass(frozen=True, slots=True)
class RemoteSettings:
    healthy_within_s: int = 300
    history: int = 10
    health_interval_s: int = 900
    update_prefix: str = ""
    release_key: str = ""
    update_max_starts: int = 3
    update_max_mib: int = 64
    update_chunk_bytes: int = 16384
    update_pause_ms: int = 50
    update_retry_s: int = 30


def remote_section(section: Any, problems: Problems) -> RemoteSettings:
    """The [remote] table's settings (defaults when it is absent); problems name each key."""
    if section is None:
        return RemoteSettings()
    before = len(problems.lines)
    values = validate_table(section, REMOTE_FIELDS, "remote", problems)
    if len(problems.lines) > before or not values:
        return RemoteSettings()  # the config is refused anyway; the caller sees the problems
    return RemoteSettings(**values)
