"""The probation of a pushed config, persisted beside the config file so that it survives the
gateway crashing on the new config.

States of `.<config>.trial.json`:
  pending      written before the new file is renamed in; the next start finds either the new
               file (-> trial) or the old one (the switch never happened: the marker goes);
  trial        the service runs the new config; it is confirmed (marker removed) once healthy;
  rolled_back  the previous file is back (not healthy in time, or a start found `trial`: the
               gateway crashed or was restarted before it was healthy); the next service start
               reports it as a `config_rolled_back` event and removes the marker.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from core.errors import MeterGatewayError
from gateway.console.accounts import atomic_write
from gateway.remote.history import sha256_text

LOGGER = logging.getLogger(__name__)
PENDING, TRIAL, ROLLED_BACK = "pending", "trial", "rolled_back"


class TrialError(MeterGatewayError):
    """The marker or the previous version cannot be read: nothing is rolled back by guess."""


@dataclass(frozen=True, slots=True)
class Trial:
    state: str
    new_sha256: str
    new_version: int
    previous_sha256: str
    previous_version: int
    previous_path: str  # the kept copy of the previous config (config_history/)
    healthy_within_s: int  # from the config in force when it was pushed
    command: str | None = None  # the config.push command id
    reason: str | None = None  # why it was rolled back


def marker_path(config: Path) -> Path:
    return config.with_name(f".{config.name}.trial.json")


def read_trial(config: Path) -> Trial | None:
    path = marker_path(config)
    try:
        return Trial(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        raise TrialError(f"{path}: unreadable trial marker ({exc})") from None


def write_trial(config: Path, trial: Trial) -> None:
    atomic_write(marker_path(config), json.dumps(asdict(trial), sort_keys=True))


def clear_trial(config: Path) -> None:
    marker_path(config).unlink(missing_ok=True)


def roll_back(config: Path, trial: Trial, reason: str) -> Trial:
    """The previous config back in place (atomically), then the marker says so."""
    previous = Path(trial.previous_path)
    try:
        text = previous.read_text(encoding="utf-8")
    except OSError as exc:
        raise TrialError(f"{previous}: the previous config is gone ({exc})") from None
    if sha256_text(text) != trial.previous_sha256:
        raise TrialError(f"{previous}: does not hash to {trial.previous_sha256}")
    atomic_write(config, text)
    done = replace(trial, state=ROLLED_BACK, reason=reason)
    write_trial(config, done)
    LOGGER.error("config_rolled_back", extra={"version": trial.new_version,
                                              "restored": trial.previous_version,
                                              "reason": reason})
    return done


def settle_at_start(config: Path) -> Trial | None:
    """Before the config is loaded: move the marker on, rolling back where it says so."""
    trial = read_trial(config)
    if trial is None:
        return None
    try:
        running = sha256_text(config.read_text(encoding="utf-8"))
    except OSError:
        running = ""
    if trial.state == PENDING:
        if running != trial.new_sha256:  # stopped before the rename: the old file runs
            clear_trial(config)
            return None
        started = replace(trial, state=TRIAL)
        write_trial(config, started)
        return started
    if trial.state == TRIAL:
        return roll_back(config, trial, "restarted_during_trial")
    return trial
