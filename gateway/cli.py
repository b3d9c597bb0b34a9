"""The `gateway` command: sub-commands are discovered from the `gateway/cmd_*.py` modules."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import gateway

# Exit statuses a technician's script can rely on.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="Meter gateway: reads meters, enforces prepaid credit, "
        "forwards signed batches.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(gateway.__path__), key=lambda i: i.name):
        if info.name.startswith("cmd_"):
            module = importlib.import_module(f"gateway.{info.name}")
            register = getattr(module, "register", None)
            if register is not None:
                register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or EXIT_OK)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK  # `gateway readings ... | head` closed our stdout: not an error


if __name__ == "__main__":
    sys.exit(main())
