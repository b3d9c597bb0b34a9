"""A config on trial watches itself: healthy within its time, or the previous one comes back.

Healthy means every bus has read at least one meter since this start, the supervisor sees
nothing stale (every scheduler stepping, the writer committing, no critical component down)
and the uplink has had an ack since this start. The checks are a callable returning what is
still missing, so the watcher is tested with a stepped clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.clock import Clock
from gateway.remote.trial import TRIAL, Trial, clear_trial, roll_back

LOGGER = logging.getLogger(__name__)
CHECK_EVERY_S = 1.0

Missing = Callable[[], list[str]]
EventSink = Callable[[str, str | None, dict[str, Any], str], None]


class Probation:
    def __init__(self, source: Path, trial: Trial, missing: Missing, clock: Clock,
                 events: EventSink, restart: Callable[[], None]) -> None:
        assert trial.state == TRIAL
        self.source, self.trial, self.missing = source, trial, missing
        self.clock, self.events, self.restart = clock, events, restart
        self.outcome: str | None = None

    async def run(self) -> None:
        """Until healthy (confirmed) or out of time (rolled back and restarted)."""
        deadline = self.clock.monotonic() + self.trial.healthy_within_s
        missing = self.missing()
        while missing and self.clock.monotonic() < deadline:
            await self.clock.sleep(CHECK_EVERY_S)
            missing = self.missing()
        if not missing:
            self._confirm()
        else:
            self._give_up(missing)

    def _confirm(self) -> None:
        clear_trial(self.source)
        self.outcome = "applied"
        self.events("config_applied", None, _data(self.trial), "info")

    def _give_up(self, missing: list[str]) -> None:
        reason = "not_healthy: " + ", ".join(missing)
        done = roll_back(self.source, self.trial, reason)
        self.outcome = "rolled_back"
        self.events("config_rollback_started", None, _data(done), "error")
        self.restart()


def report_rollback(source: Path, trial: Trial, events: EventSink) -> None:
    """At the start after a rollback: the event that tells the head-end, then the marker goes."""
    events("config_rolled_back", None, _data(trial), "error")
    clear_trial(source)


def _data(trial: Trial) -> dict[str, Any]:
    data: dict[str, Any] = {"version": trial.new_version, "sha256": trial.new_sha256,
                            "previous_version": trial.previous_version,
                            "previous_sha256": trial.previous_sha256,
                            "command": trial.command}
    if trial.reason is not None:
        data["reason"] = trial.reason
    return data

