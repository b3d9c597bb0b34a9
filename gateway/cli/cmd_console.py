"""`gateway console [--port DEV]` and `gateway console passwd`: the technician console CLI."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import sys
import tempfile
import termios
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gateway.console.accounts import AccountError, ConsoleSettings, load_settings, set_account
from gateway.console.api import ControlError, Role
from gateway.console.serve import RESTART_DELAY_S, serve_fd
from gateway.console.socket import RemoteApi

LOGGER = logging.getLogger(__name__)

DEFAULT_CONFIG = os.environ.get("GATEWAY_CONFIG", "/etc/gateway/gateway.toml")
MIN_PASSWORD_LEN = 8  # short passwords fall to a guesser even with scrypt and lockout


def register(subparsers: Any) -> None:
    """Add `console` (and `console passwd`) to the gateway CLI."""
    parser = subparsers.add_parser("console", help="technician console (serial port or SSH)")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="gateway config (TOML)")
    parser.add_argument("--port", help="serve the console on this serial port (115200 8N1)")
    parser.add_argument("--socket", help="control socket (default: [console] socket)")
    parser.set_defaults(func=run_console)
    sub = parser.add_subparsers(dest="console_command")
    passwd = sub.add_parser("passwd", help="add or change a console account")
    passwd.add_argument("name", help="account name (lower case, e.g. ana)")
    passwd.add_argument("--role", required=True, choices=[r.name.lower() for r in Role])
    passwd.add_argument("--config", dest="passwd_config", default=None,
                        help="gateway config (TOML) to edit")
    passwd.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of stdin (scripts)")
    passwd.set_defaults(func=run_passwd)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (tests, and until gateway/cli/main.py discovers this module)."""
    parser = argparse.ArgumentParser(prog="gateway")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def run_passwd(args: argparse.Namespace) -> int:
    path = Path(args.passwd_config or args.config)
    password = _read_password(args.password_stdin)
    if password is None:
        return 2
    try:
        set_account(path, args.name, Role.parse(args.role), password)
    except AccountError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    sys.stdout.write(f"Account {args.name} ({args.role}) saved in {path}.\n")
    return 0


def _read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("New password: ")
        if getpass.getpass("Repeat password: ") != password:
            sys.stderr.write("error: the passwords differ; nothing was changed\n")
            return None
    if len(password) < MIN_PASSWORD_LEN:
        sys.stderr.write(f"error: use at least {MIN_PASSWORD_LEN} characters\n")
        return None
    return password


def run_console(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(Path(args.config))
    except AccountError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    socket_path = args.socket or settings.socket
    try:
        if args.port:
            asyncio.run(_serve_port(args.config, args.port, socket_path, settings))
        else:
            return asyncio.run(_attach(socket_path, settings))
    except KeyboardInterrupt:
        return 130
    return 0


async def _attach(socket_path: str, settings: ConsoleSettings) -> int:
    """`gateway console` over SSH: this terminal, the running service's socket."""
    try:
        api = await RemoteApi.connect(socket_path)
    except ControlError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    try:
        with _raw_terminal(sys.stdin.fileno()):
            await serve_fd(sys.stdin.fileno(), sys.stdout.fileno(), api, api,
                           settings.idle_logout_s, once=True)
    finally:
        await api.close()
    return 0


@contextlib.contextmanager
def _raw_terminal(fd: int) -> Iterator[None]:
    """Our line editor does the echo; the terminal must pass every key through."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def _serve_port(config_path: str, port: str, socket_path: str,
                      settings: ConsoleSettings) -> None:
    """`gateway console --port DEV`: a login prompt on a serial line, for ever."""
    while True:
        line = _open_line(config_path, port, settings.baudrate)
        try:
            api = await RemoteApi.connect(socket_path)
        except ControlError as exc:
            LOGGER.warning("console_service_unreachable", extra={"error": str(exc)})
            os.write(line.fileno(), f"\r\nConsole unavailable: {exc}\r\n".encode())
            line.close()
            await asyncio.sleep(RESTART_DELAY_S)
            continue
        try:
            await serve_fd(line.fileno(), line.fileno(), api, api, settings.idle_logout_s)
        finally:
            await api.close()
            line.close()
        await asyncio.sleep(RESTART_DELAY_S)


def _open_line(config_path: str, port: str, baudrate: int) -> Any:
    """Open the console line 8N1 through the board (the one package that opens devices)."""
    from board.interface import BoardError, SerialSpec
    from gateway.app.service import make_board
    from gateway.config.loader import ConfigError, load_config

    try:
        board = make_board(load_config(config_path))
    except ConfigError as exc:
        # A broken gateway config must not lock the technician out of the console that is
        # there to repair it: the plain (simulated) board opens a serial line the same way.
        # Its state goes to a throw-away directory and it is never closed, so it cannot
        # touch the outputs the running service holds.
        from board.simulated import SimulatedBoard

        LOGGER.warning("console_config_invalid", extra={"config": config_path,
                                                        "problems": len(exc.problems)})
        board = SimulatedBoard(tempfile.mkdtemp(prefix="gateway-console-"))
    try:
        return board.open_serial(SerialSpec(port, baudrate))
    except BoardError as exc:
        raise SystemExit(f"error: cannot open {port} ({exc}); check the device name") from exc


if __name__ == "__main__":
    raise SystemExit(main())
