"""A new version on probation (docs/update.md): the same health checks as a pushed config
(gateway/wiring/remote.py `healthy_check`), within the same `healthy_within_s`. Healthy: the
marker goes, event `update_applied`. Not in time: `current` back to the previous version,
event `update_rollback_started`, a restart into it (which reports `update_rolled_back`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.clock import Clock
from gateway.remote.probation import CHECK_EVERY_S, EventSink, Missing
from gateway.remote.update_ab import prune, restart_into
from gateway.remote.update_trial import TRIAL, UpdateTrial, clear_update_trial, confirm, roll_back


class UpdateProbation:
    def __init__(self, prefix: Path, trial: UpdateTrial, missing: Missing, clock: Clock,
                 events: EventSink, restart: Callable[[], None]) -> None:
        assert trial.state == TRIAL
        self.prefix, self.trial, self.missing = prefix, trial, missing
        self.clock, self.events, self.restart = clock, events, restart
        self.outcome: str | None = None

    async def run(self) -> None:
        deadline = self.clock.monotonic() + self.trial.healthy_within_s
        missing = self.missing()
        while missing and self.clock.monotonic() < deadline:
            await self.clock.sleep(CHECK_EVERY_S)
            missing = self.missing()
        if not missing:
            confirm(self.prefix)
            prune(self.prefix)
            self.outcome = "applied"
            self.events("update_applied", None, update_data(self.trial), "info")
            return
        done = roll_back(self.prefix, self.trial, "not_healthy: " + ", ".join(missing))
        self.outcome = "rolled_back"
        self.events("update_rollback_started", None, update_data(done), "error")
        restart_into(self.prefix)
        self.restart()


def report_update_rollback(prefix: Path, trial: UpdateTrial, events: EventSink) -> None:
    """The previous version runs again: tell the head-end, then the marker goes."""
    events("update_rolled_back", None, update_data(trial), "error")
    clear_update_trial(prefix)


def update_data(trial: UpdateTrial) -> dict[str, Any]:
    data: dict[str, Any] = {"version": trial.new_version, "previous": trial.previous_version,
                            "starts": trial.starts, "command": trial.command}
    if trial.reason is not None:
        data["reason"] = trial.reason
    return data
