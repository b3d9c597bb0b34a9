"""`serve --config headend.toml`: the `[headend]` table holds what the options hold, so one
file per site or fleet names the database URL, broker and key; an option given on the
command line wins over the file."""

import argparse
import tomllib
from pathlib import Path
from typing import Final

from uplink.headend.usage import HeadendUsageError

# config key -> (argparse destination, type)
KEYS: Final = {"db": ("db", str), "broker": ("broker", str), "prefix": ("prefix", str),
               "state": ("state", str), "key": ("key", str), "gap_grace_s": ("gap_grace", float),
        "key_refresh_s": ("key_refresh", float)}


def apply_config(args: argparse.Namespace, defaults: dict[str, object]) -> None:
    """Fill `args` from the file where the command line left an option at its default."""
    path = getattr(args, "config", None)
    if path:
        try:
            table = tomllib.loads(Path(path).read_text()).get("headend", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise HeadendUsageError(f"--config {path}: {exc}") from None
        unknown = sorted(set(table) - set(KEYS))
        if unknown:
            raise HeadendUsageError(f"--config {path}: unknown key(s) in [headend]: "
                                    f"{', '.join(unknown)}")
        for key, value in table.items():
            dest, kind = KEYS[key]
            if not isinstance(value, kind | int if kind is float else kind):
                raise HeadendUsageError(f"--config {path}: [headend] {key} must be {kind.__name__}")
            if getattr(args, dest, None) == defaults.get(dest):
                setattr(args, dest, kind(value))
    if not getattr(args, "db", None):
        raise HeadendUsageError("--db (or `db` in the [headend] table of --config) is required")
