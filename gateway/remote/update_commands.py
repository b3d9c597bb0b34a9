"""`update.offer` and `update.get` (docs/update.md): the signed command that starts a software
update, and the versions this gateway has.

The offer is answered at once (accepted, or refused: updates off, a version that is not
N.N.N, an update already under way); the download, the install and the switch go on in the
background and end in one event: `update_refused` (with the reason: bad_signature, wrong_hash,
truncated, too_large, downgrade_refused, ...) or `update_switched`, after which the service
restarts into the new version, which runs on probation (gateway/wiring/remote.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core.clock import Clock
from gateway.remote.probation import EventSink
from gateway.remote.update_ab import (
    InstallError,
    install_version,
    installed_min_version,
    linked_version,
)
from gateway.remote.update_fetch import Fetcher, FetchLimits
from gateway.remote.update_trial import begin, read_update_trial
from uplink.commands import CommandContext, CommandRefused
from uplink.release import BundleError, Manifest

LOGGER = logging.getLogger(__name__)
_VERSION: Final = re.compile(r"^[0-9]{1,6}(\.[0-9]{1,6}){0,3}$")
# a link loss: the download resumes after `retry_s`, this many times, then update_refused
RETRIES: Final = 20


@dataclass(frozen=True, slots=True)
class UpdatePlace:
    """Where versions live, the release key, the live database and the limits."""

    prefix: Path
    downloads: Path  # <data dir>/update_download
    database: Path
    release_key: Ed25519PublicKey
    healthy_within_s: int
    max_starts: int
    limits: FetchLimits
    retry_s: float = 30.0  # no answer within this: stop, wait as long, resume


TransportFactory = Callable[[], Any]  # an async context manager yielding a Transport


class UpdateCommands:
    def __init__(self, place: UpdatePlace, transport: TransportFactory, clock: Clock,
                 events: EventSink, switched: Callable[[], None]) -> None:
        self.place, self.transport, self.clock = place, transport, clock
        self.events, self.switched = events, switched
        self.task: asyncio.Task[None] | None = None

    def handlers(self) -> dict[str, Any]:
        return {"update.offer": self.offer, "update.get": self.get}

    def running(self) -> str:
        return linked_version(self.place.prefix) or "0"

    async def get(self, args: dict[str, Any], ctx: CommandContext) -> dict[str, Any]:
        return status(self.place.prefix)

    async def offer(self, args: dict[str, Any], ctx: CommandContext) -> dict[str, Any]:
        version = args.get("version")
        if not isinstance(version, str) or _VERSION.match(version) is None:
            raise CommandRefused("bad_args", "version (N[.N[.N[.N]]]) is required")
        if self.task is not None and not self.task.done():
            raise CommandRefused("update_in_progress", "a download is under way")
        if read_update_trial(self.place.prefix) is not None:
            raise CommandRefused("trial_in_progress", "the last update is still on probation")
        if version == self.running():
            raise CommandRefused("unchanged", f"{version} is running already")
        self.task = asyncio.ensure_future(self.update(version, ctx.command_id))
        LOGGER.warning("update_offered", extra={"version": version, "command": ctx.command_id})
        return {"accepted": True, "version": version, "running": self.running()}

    async def update(self, version: str, command: str | None) -> None:
        """Fetch (resuming after a loss), install, switch; one event says how it ended."""
        data = {"version": version, "running": self.running(), "command": command}
        try:
            directory, manifest = await self._fetch(version)
            await asyncio.to_thread(install_version, self.place.prefix, directory, manifest)
            await asyncio.to_thread(begin, self.place.prefix, version,
                                    self.place.healthy_within_s, database=self.place.database,
                                    max_starts=self.place.max_starts, command=command)
        except (BundleError, InstallError) as exc:
            LOGGER.error("update_refused", extra={**data, "reason": exc.reason})
            self.events("update_refused", None, {**data, "reason": exc.reason,
                                                 "error": str(exc)}, "error")
            return
        except (ConnectionError, TimeoutError, OSError) as exc:
            self.events("update_refused", None, {**data, "reason": "unreachable",
                                                 "error": str(exc)}, "error")
            return
        await asyncio.to_thread(shutil.rmtree, directory, True)  # installed: the card's space back
        self.events("update_switched", None, data, "warning")
        self.switched()

    async def _fetch(self, version: str) -> tuple[Path, Manifest]:
        directory = self.place.downloads / version
        await asyncio.to_thread(_drop_other_downloads, self.place.downloads, version)
        floor = installed_min_version(self.place.prefix, self.running())
        for attempt in range(RETRIES + 1):
            try:
                async with self.transport() as chunks:
                    fetcher = Fetcher(directory, version, chunks, self.clock, self.place.limits)
                    manifest = await fetcher.bundle(self.place.release_key, self.running(),
                                                    floor)
                return directory, manifest
            except (ConnectionError, TimeoutError):
                if attempt == RETRIES:
                    raise
                LOGGER.warning("update_download_interrupted", extra={"version": version,
                                                                     "attempt": attempt + 1})
                await self.clock.sleep(self.place.retry_s)
        raise AssertionError("unreachable")


def _drop_other_downloads(downloads: Path, keep: str) -> None:
    """Parts of a download of another version (given up, or superseded) go."""
    if downloads.is_dir():
        for path in downloads.iterdir():
            if path.name != keep:
                shutil.rmtree(path, ignore_errors=True)


def release_key_of(path: Path, command_key: Path | None) -> Ed25519PublicKey:
    """The release public key; SigningKeyFileError when unreadable or when it is the command
    key (a stolen command key must not be able to sign code)."""
    from cryptography.hazmat.primitives import serialization

    from uplink.errors import SigningKeyFileError
    from uplink.keys import load_public_key

    key = load_public_key(path)
    if command_key is not None and command_key.exists():
        raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
        if load_public_key(command_key).public_bytes(*raw) == key.public_bytes(*raw):
            raise SigningKeyFileError(f"{path}: the release key is the head-end's command key "
                                      f"({command_key}); updates need a key of their own")
    return key


def status(prefix: Path) -> dict[str, Any]:
    """What `gateway update status` and `update.get` show."""
    trial = read_update_trial(prefix)
    versions = prefix / "versions"
    installed = sorted(p.name for p in versions.iterdir()
                       if p.is_dir() and not p.name.startswith(".")) if versions.is_dir() else []
    return {"running": linked_version(prefix), "previous": linked_version(prefix, "previous"),
            "installed": installed,
            "trial": None if trial is None else {"state": trial.state,
                                                 "version": trial.new_version,
                                                 "starts": trial.starts,
                                                 "max_starts": trial.max_starts,
                                                 "reason": trial.reason}}

