"""What the protocols' command lines share: output lines (a CLI writes to stdout and stderr;
library code logs instead) and exact values as JSON text."""

from __future__ import annotations

import sys
from decimal import Decimal


def out(text: str) -> None:
    """One line of command output on stdout, flushed (a pipe reader sees it at once)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def err(text: str) -> None:
    sys.stderr.write(text + "\n")


def jsonable(value: Decimal | str | None) -> str | None:
    """An exact value as JSON text (never a float); None: the meter sent no usable value."""
    return None if value is None else str(value)
