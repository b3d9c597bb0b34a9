"""The probation of an installed update, in `<prefix>/update.trial.json` (docs/update.md), beside
the versions so that it survives the new version crashing.

States (as a pushed config's, gateway/remote/trial.py):
  pending      written before `current` is switched; the next start finds either the new
               version (-> trial, starts 1) or the old one (the switch never happened: gone);
  trial        the new version runs; each start counts (`starts`). Healthy within
               `healthy_within_s` (the same checks as a config on trial): confirmed, marker gone.
               More than `max_starts` starts (a crash loop: systemd's Restart=always brings it
               back each time) or not healthy in time: rolled back;
  rolled_back  `current` is the previous version again; the next start of that version reports
               `update_rolled_back` and removes the marker.

`guard_start` is what each start calls first, before the config or the database is opened; it
uses nothing but the standard library and this package's marker, so it also runs as the unit's
`ExecStartPre=<prefix>/previous-or-current/bin/python -m gateway.remote.update_trial PREFIX`.

The database: `begin` keeps a consistent copy (SQLite backup API) of the database as the old
version left it, with its schema number. A rollback puts it back only when the new version
migrated the live one past that number (the old code would refuse it: SchemaTooNew); the
migrated file is kept beside it (`rolled-back-<version>.db`), never deleted.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Final

from core.errors import MeterGatewayError
from gateway.remote.update_ab import linked_version, relink

LOGGER = logging.getLogger(__name__)
PENDING, TRIAL, ROLLED_BACK = "pending", "trial", "rolled_back"
MARKER: Final = "update.trial.json"
BACKUP_DIR: Final = "update_backup"
DEFAULT_MAX_STARTS: Final = 3


@dataclass(frozen=True, slots=True)
class UpdateTrial:
    state: str
    new_version: str
    previous_version: str
    healthy_within_s: int
    max_starts: int = DEFAULT_MAX_STARTS
    starts: int = 0
    database: str | None = None  # the live database
    db_copy: str | None = None  # its copy as the previous version left it
    db_schema: int | None = None  # the copy's PRAGMA user_version
    command: str | None = None
    reason: str | None = None


def marker(prefix: Path) -> Path:
    return prefix / MARKER


class UpdateTrialError(MeterGatewayError):
    """The marker cannot be read: nothing is switched by guess; the running version runs."""


def read_update_trial(prefix: Path) -> UpdateTrial | None:
    try:
        return UpdateTrial(**json.loads(marker(prefix).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        raise UpdateTrialError(f"{marker(prefix)}: unreadable update marker ({exc})") from None


def write_update_trial(prefix: Path, trial: UpdateTrial) -> None:
    path = marker(prefix)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(asdict(trial), sort_keys=True))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def clear_update_trial(prefix: Path) -> None:
    marker(prefix).unlink(missing_ok=True)


def copy_database(database: Path, dest_dir: Path, version: str) -> tuple[Path, int]:
    """A consistent copy of a live SQLite database (backup API) and its schema number."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"pre-update-{version}.db"
    dest.unlink(missing_ok=True)
    source = sqlite3.connect(database)
    target = sqlite3.connect(dest)
    try:
        source.backup(target)
        schema = int(target.execute("PRAGMA user_version").fetchone()[0])
    finally:
        target.close()
        source.close()
    return dest, schema


def begin(prefix: Path, new_version: str, healthy_within_s: int, *, database: Path | None,
          max_starts: int = DEFAULT_MAX_STARTS, command: str | None = None) -> UpdateTrial:
    """Marker `pending`, the database copied, then `current` switched to the new version."""
    from gateway.remote.update_ab import switch_to

    previous = linked_version(prefix)
    if previous is None:
        raise FileNotFoundError(f"{prefix / 'current'}: no running version to come back to")
    copy, schema = (None, None)
    if database is not None and database.exists():
        path, schema = copy_database(database, database.parent / BACKUP_DIR, previous)
        copy = str(path)
    trial = UpdateTrial(PENDING, new_version, previous, healthy_within_s, max_starts,
                        database=str(database) if database else None, db_copy=copy,
                        db_schema=schema, command=command)
    write_update_trial(prefix, trial)
    switch_to(prefix, new_version)
    return trial


def guard_start(prefix: Path) -> UpdateTrial | None:
    """At each start, first: count the start, rolling back where the marker says so."""
    trial = read_update_trial(prefix)
    if trial is None:
        return None
    running = linked_version(prefix)
    if trial.state == PENDING:
        if running != trial.new_version:  # stopped before the switch: the old one runs
            clear_update_trial(prefix)
            return None
        trial = replace(trial, state=TRIAL)
    if trial.state != TRIAL:
        return trial
    if running != trial.new_version:  # a technician switched by hand
        clear_update_trial(prefix)
        return None
    counted = replace(trial, starts=trial.starts + 1)
    if counted.starts > counted.max_starts:
        return roll_back(prefix, counted, f"crash_loop: {trial.starts} starts without "
                                          "becoming healthy")
    write_update_trial(prefix, counted)
    return counted


def roll_back(prefix: Path, trial: UpdateTrial, reason: str) -> UpdateTrial:
    """`current` back to the previous version, its database back if it was migrated past it."""
    relink(prefix, "current", trial.previous_version)
    restored = restore_database(trial)
    done = replace(trial, state=ROLLED_BACK, reason=reason + ("; database restored from the "
                                                              "pre-update copy" if restored
                                                              else ""))
    write_update_trial(prefix, done)
    LOGGER.error("update_rolled_back", extra={"version": trial.new_version,
                                              "restored": trial.previous_version,
                                              "reason": done.reason})
    return done


def restore_database(trial: UpdateTrial) -> bool:
    """The pre-update copy back when the live database's schema is past it; True if so."""
    if trial.database is None or trial.db_copy is None or trial.db_schema is None:
        return False
    live = Path(trial.database)
    if not live.exists():
        return False
    conn = sqlite3.connect(live)
    try:
        schema = int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()
    if schema <= trial.db_schema:
        return False  # the old code opens it: the readings taken on trial are kept
    aside = live.parent / BACKUP_DIR / f"rolled-back-{trial.new_version}.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{live}{suffix}").unlink(missing_ok=True)
    os.replace(live, aside)
    os.replace(trial.db_copy, live)
    return True


def confirm(prefix: Path) -> None:
    """The new version proved itself: the marker goes (older versions are pruned later)."""
    clear_update_trial(prefix)


def main(argv: list[str]) -> int:
    """`python -m gateway.remote.update_trial PREFIX`: the guard alone (ExecStartPre). Exit 0
    whatever it finds: a failed ExecStartPre would keep the running version from starting."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m gateway.remote.update_trial PREFIX\n")
        return 2
    try:
        trial = guard_start(Path(argv[0]))
    except (MeterGatewayError, OSError) as exc:  # never keep the service from starting
        sys.stderr.write(f"update guard: {exc}\n")
        return 0
    sys.stdout.write(json.dumps(asdict(trial) if trial else None) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
