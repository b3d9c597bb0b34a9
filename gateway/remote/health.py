"""The periodic health record: what an operator needs to see of a gateway visited once in years.

Fields (integers, text and booleans only; docs/remote.md): uptime, versions, the running
config's version and hash, process CPU, resident memory, free disk, bytes the process wrote
(the SD card's wear) per hour, the board's temperature where it has a sensor, per-bus typed
counters, outbox depth, clock sync, the uplink's state and the last error of each component
that failed. One row per sample in `health_records` with its outbox row (kind `health`, low
priority), written by the `health` component every `[remote] health_interval_s`.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from core.clock import Clock
from storage import health
from storage.errors import StorageError
from storage.store import Store

LOGGER = logging.getLogger(__name__)
PROC_STATUS = Path("/proc/self/status")
PROC_IO = Path("/proc/self/io")
MS_PER_HOUR = 3_600_000


def proc_field(text: str, name: str) -> int | None:
    """The integer after `name:` in a /proc key-value file (status in kB, io in bytes)."""
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if sep and key.strip() == name:
            words = rest.split()
            return int(words[0]) if words and words[0].isdigit() else None
    return None


def _read_field(path: Path, name: str) -> int | None:
    try:
        return proc_field(path.read_text(encoding="ascii", errors="replace"), name)
    except OSError:  # no /proc (another OS) or a sandbox hiding it
        return None


def rss_bytes(path: Path = PROC_STATUS) -> int | None:
    kib = _read_field(path, "VmRSS")
    return None if kib is None else kib * 1024


def written_bytes(path: Path = PROC_IO) -> int | None:
    """Bytes this process caused to be written to storage (write_bytes, not wchar)."""
    return _read_field(path, "write_bytes")


def package_version() -> str:
    try:
        return metadata.version("meter-gateway")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class HealthSources:
    """Where each field comes from, as callables over the running service."""

    clock: Clock
    started_ms: int
    data_dir: Path
    config_version: Callable[[], Mapping[str, Any]]
    buses: Callable[[], Mapping[str, Any]]
    outbox_depth: Callable[[], int]
    clock_synced: Callable[[], bool]
    components: Callable[[], Mapping[str, Any]]
    temperature_mc: Callable[[], int | None]
    uplink: Callable[[], Mapping[str, Any]] | None = None
    proc_status: Path = PROC_STATUS
    proc_io: Path = PROC_IO


class HealthSampler:
    def __init__(self, sources: HealthSources) -> None:
        self.sources = sources
        self._last: tuple[int, int] | None = None  # (wall ms, written bytes) of the last sample

    def sample(self) -> dict[str, Any]:
        src = self.sources
        now = src.clock.wall_ms()
        times = os.times()
        data: dict[str, Any] = {
            "uptime_s": max(0, now - src.started_ms) // 1000,
            "version": {"gateway": package_version(), "python": platform.python_version()},
            "config": dict(src.config_version()),
            "cpu_ms": int((times.user + times.system) * 1000),
            "rss_bytes": rss_bytes(src.proc_status),
            "disk_free_bytes": _disk_free(src.data_dir),
            "temperature_mc": src.temperature_mc(),
            "buses": dict(src.buses()),
            "outbox": src.outbox_depth(),
            "clock_synced": src.clock_synced(),
            "components": dict(src.components()),
        }
        data.update(self._writes(now, written_bytes(src.proc_io)))
        if src.uplink is not None:
            data["uplink"] = dict(src.uplink())
        return data

    def _writes(self, now: int, written: int | None) -> dict[str, int | None]:
        if written is None:
            return {"written_bytes": None, "written_bytes_per_h": None}
        since_ms, before = self._last or (self.sources.started_ms, 0)
        self._last = (now, written)
        per_h = (written - before) * MS_PER_HOUR // max(1, now - since_ms)
        return {"written_bytes": written, "written_bytes_per_h": max(0, per_h)}


def _disk_free(directory: Path) -> int | None:
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return None


class HealthReporter:
    """Writes one health record every `interval_s`; `on_stored` wakes the uplink."""

    def __init__(self, store: Store, sampler: HealthSampler, interval_s: float,
                 on_stored: Callable[[], None] = lambda: None) -> None:
        self.store, self.sampler, self.interval_s = store, sampler, interval_s
        self.on_stored = on_stored

    def record(self) -> int:
        """One sample stored with its outbox row; the row id."""
        data = self.sampler.sample()
        ts_ms = self.sampler.sources.clock.wall_ms()
        with self.store.transaction() as tx:
            ref = health.add(tx.conn, ts_ms, data)
            self.store.outbox_add(tx, health.OUTBOX_KIND, ref, ts_ms)
            health.prune(tx.conn)
        self.on_stored()
        return ref

    async def run(self) -> None:
        clock = self.sampler.sources.clock
        while True:
            await clock.sleep(self.interval_s)
            try:
                self.record()
            except StorageError as exc:  # telemetry: the next interval tries again
                LOGGER.error("health_not_stored", extra={"reason": str(exc)})


def health_fields(body: health.HealthRecord) -> dict[str, Any]:
    """The wire fields of a health record: its data as it is (record time from ts_ms)."""
    return dict(body.data)
