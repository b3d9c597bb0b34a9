"""The `gateway` command: sub-commands from the `gateway/cli/cmd_*.py` modules and the plugins."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Callable, Sequence
from typing import Any

import gateway.cli
from drivers.errors import PortUnavailable
from drivers.plugin import SerialParams
from gateway.config.loader import ConfigError

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
    for info in sorted(pkgutil.iter_modules(gateway.cli.__path__), key=lambda i: i.name):
        if info.name.startswith("cmd_"):
            module = importlib.import_module(f"gateway.cli.{info.name}")
            register = getattr(module, "register", None)
            if register is not None:
                register(sub)
    from gateway.wiring.protocols import plugins

    for plugin in plugins():  # a protocol's own sub-commands (`gateway <protocol> ...`)
        if plugin.cli is not None:
            plugin.cli(sub, serial_port)
    return parser


def serial_port(port: str) -> Callable[[SerialParams], Any]:
    """The protocol commands' port opener: `port` resolved now (a by-id name too), opened with
    each call's line settings; the board's errors are the driver's PortUnavailable."""
    from board.interface import BoardError, SerialSpec
    from board.serial_ports import open_serial, resolve_serial_port

    try:
        path = resolve_serial_port(port)
    except BoardError as exc:
        raise PortUnavailable(str(exc)) from exc

    def open_port(params: SerialParams) -> Any:
        spec = SerialSpec(path, params.baudrate, bytesize=params.bytesize, parity=params.parity,
                          stopbits=params.stopbits, rs485=dict(params.rs485))
        try:
            return open_serial(spec, 0)
        except BoardError as exc:
            raise PortUnavailable(str(exc)) from exc
    return open_port


def project_errors() -> tuple[type[Exception], ...]:
    """The exception trees of the project's packages: each names what is wrong in its message.

    Only these become one line; anything else is a bug and keeps its traceback.
    """
    from board.interface import BoardError
    from drivers.errors import DriverError
    from prepay.errors import PrepayError
    from storage.errors import StorageError
    from uplink.errors import UplinkError

    return (StorageError, BoardError, DriverError, UplinkError, PrepayError)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or EXIT_OK)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK  # `gateway readings ... | head` closed our stdout: not an error
    except ConfigError as exc:
        for line in exc.problems:
            sys.stderr.write(f"config error: {line}\n")
        return EXIT_CONFIG
    except project_errors() as exc:
        # a command that forgot to catch its own error: still one line, not a traceback
        sys.stderr.write(f"gateway {args.command}: error: {exc}\n")
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
