"""`gateway update status|rollback` (docs/update.md): the versions on this gateway, and a
technician's switch back to the previous one (then `sudo systemctl restart gateway`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_FAILURE = 1


def _prefix(args: argparse.Namespace) -> Path | None:
    if args.prefix:
        return Path(args.prefix)
    from gateway.config.loader import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"gateway update: {args.config}: {len(exc.problems)} problems\n")
        return None
    prefix = config.remote.update_prefix if config.remote is not None else ""
    if not prefix:
        sys.stderr.write(f"gateway update: {args.config} has no [remote] update_prefix\n")
        return None
    return Path(prefix)


def cmd_update(args: argparse.Namespace) -> int:
    from gateway.remote.update_commands import status

    prefix = _prefix(args)
    if prefix is None:
        return EXIT_FAILURE
    if args.update_action == "rollback":
        code = _rollback(prefix)
        if code != EXIT_OK:
            return code
    sys.stdout.write(json.dumps(status(prefix), indent=2) + "\n")
    return EXIT_OK


def _rollback(prefix: Path) -> int:
    from gateway.remote.update_ab import InstallError, linked_version, switch_to
    from gateway.remote.update_trial import ROLLED_BACK, read_update_trial, roll_back

    trial = read_update_trial(prefix)
    if trial is not None and trial.state != ROLLED_BACK:
        roll_back(prefix, trial, "technician")  # the database too, as an automatic rollback
    else:
        previous = linked_version(prefix, "previous")
        if previous is None:
            sys.stderr.write(f"gateway update rollback: {prefix} has no previous version\n")
            return EXIT_FAILURE
        try:
            switch_to(prefix, previous)
        except InstallError as exc:
            sys.stderr.write(f"gateway update rollback: {exc}\n")
            return EXIT_FAILURE
        sys.stderr.write("the update was confirmed: a database it migrated is refused by the "
                         "older version (SchemaTooNew); its pre-update copy is in "
                         "<data dir>/update_backup/\n")
    sys.stderr.write(f"now {linked_version(prefix)}; restart the service: "
                     "sudo systemctl restart gateway\n")
    return EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    update = sub.add_parser("update", help="software versions on this gateway; roll back")
    update.add_argument("update_action", choices=("status", "rollback"))
    update.add_argument("--config", default="/etc/gateway/gateway.toml",
                        help="the config whose [remote] update_prefix is used")
    update.add_argument("--prefix", help="the versions' directory (instead of --config)")
    update.set_defaults(func=cmd_update)
