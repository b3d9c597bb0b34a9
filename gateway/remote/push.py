"""`config.push` and `config.get`: the signed commands that replace the whole config file.

A push is refused (every problem listed) or written: the new text is kept as the next version,
the trial marker goes down as `pending`, the file is replaced atomically and the service restarts
itself through the clean restart the console uses (`gateway run` execs itself again; under
systemd the same PID). The new process finds the marker (gateway/remote/trial.py) and watches
itself (gateway/remote/probation.py); a crash before it is healthy rolls it back at the next start.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.config.loader import GatewayConfig
from gateway.console.accounts import atomic_write
from gateway.remote.history import ConfigHistory, ConfigVersion, sha256_text
from gateway.remote.settings import RemoteSettings
from gateway.remote.trial import PENDING, Trial, TrialError, read_trial, write_trial
from gateway.remote.validate import problems_of_text
from uplink.commands import CommandContext, CommandRefused

LOGGER = logging.getLogger(__name__)
_SHA = re.compile(r"^[0-9a-f]{64}$")
# The result of the push is stored before the service stops: it goes up after the restart.
RESTART_DELAY_S = 0.5
# A config larger than this is refused (a command is at most 16 KiB on the wire anyway).
MAX_CONFIG_CHARS = 15_000


@dataclass
class RunningConfig:
    """The config this process runs, its version, and the history it belongs to."""

    config: GatewayConfig
    settings: RemoteSettings
    history: ConfigHistory
    version: ConfigVersion

    @classmethod
    def of(cls, config: GatewayConfig, settings: RemoteSettings) -> RunningConfig:
        """The running file kept as a version (the newest already, or added now)."""
        history = ConfigHistory(config.storage.path.parent / "config_history", settings.history)
        text = config.source.read_text(encoding="utf-8")
        return cls(config, settings, history, history.find(sha256_text(text)) or
                   history.add(text))

    def describe(self) -> dict[str, Any]:
        return {"version": self.version.number, "sha256": self.version.sha256}


class ConfigCommands:
    """The handlers; `restart()` stops the service for a clean re-exec."""

    def __init__(self, running: RunningConfig, restart: Callable[[], None]) -> None:
        self.running = running
        self.restart = restart

    def handlers(self) -> dict[str, Any]:
        return {"config.push": self.push, "config.get": self.get}

    async def get(self, args: dict[str, Any], ctx: CommandContext) -> dict[str, Any]:
        trial = read_trial(self.running.config.source)
        return {**self.running.describe(), "trial": trial.state if trial else None,
                "versions": [{"version": v.number, "sha256": v.sha256}
                             for v in self.running.history.versions()]}

    async def push(self, args: dict[str, Any], ctx: CommandContext) -> dict[str, Any]:
        text, sha = _arguments(args)
        source = self.running.config.source
        if sha == self.running.version.sha256:
            raise CommandRefused("unchanged", "this config is running already")
        try:
            if read_trial(source) is not None:
                raise CommandRefused("trial_in_progress", "the last push is still on probation")
        except TrialError as exc:
            raise CommandRefused("trial_in_progress", str(exc)) from None
        problems = await asyncio.to_thread(problems_of_text, self.running.config, text)
        if problems:
            LOGGER.warning("config_push_refused", extra={"problems": problems,
                                                         "command": ctx.command_id})
            raise CommandRefused("invalid_config", f"{len(problems)} problems",
                                 fields={"problems": problems})
        version = await asyncio.to_thread(self._switch, text, ctx.command_id)
        asyncio.get_running_loop().call_later(RESTART_DELAY_S, self.restart)
        LOGGER.warning("config_pushed", extra={"version": version.number, "sha256": sha,
                                               "command": ctx.command_id})
        return {"accepted": True, "version": version.number, "sha256": sha,
                "previous": self.running.describe(),
                "healthy_within_s": self.running.settings.healthy_within_s}

    def _switch(self, text: str, command: str) -> ConfigVersion:
        """Kept, marked pending, then renamed in: a crash at any point leaves a known state."""
        running, source = self.running, self.running.config.source
        version = running.history.add(text)
        write_trial(source, Trial(PENDING, version.sha256, version.number,
                                  running.version.sha256, running.version.number,
                                  str(running.version.path), running.settings.healthy_within_s,
                                  command))
        atomic_write(source, text)
        return version


def _arguments(args: dict[str, Any]) -> tuple[str, str]:
    text, sha = args.get("config"), args.get("sha256")
    if not isinstance(text, str) or not isinstance(sha, str) or _SHA.match(sha) is None:
        raise CommandRefused("bad_args", "config (TOML text) and sha256 (64 lower-case hex "
                             "digits) are required")
    if len(text) > MAX_CONFIG_CHARS:
        raise CommandRefused("config_too_large", f"{len(text)} characters, at most "
                             f"{MAX_CONFIG_CHARS}")
    if sha256_text(text) != sha:
        raise CommandRefused("hash_mismatch", f"the config hashes to {sha256_text(text)}")
    return text, sha

