"""Test helper process: the real console server on a pty line plus the control socket.

Usage: python -m tests.gateway.console.serve_pty PTY_PATH SOCKET CONFIG
Runs like the service would: `serve_forever` on the line, `ControlServer` on the socket, one
InMemoryApi behind both, one LoginGuard per line. Prints "READY" when both are up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import termios
import tty
from pathlib import Path

from gateway.console.accounts import load_settings
from gateway.console.serve import serve_forever
from gateway.console.shell import LocalAuthenticator
from gateway.console.socket import ControlServer
from tests.gateway.console.memory_api import InMemoryApi


async def main(pty_path: str, socket_path: str, config: str) -> None:
    settings = load_settings(Path(config))
    api = InMemoryApi()
    server = ControlServer(api, LocalAuthenticator(settings), socket_path)
    await server.start()
    fd = os.open(pty_path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd, termios.TCSANOW)  # what board.open_serial does to a real UART
    print("READY", flush=True)
    await serve_forever(fd, fd, api, LocalAuthenticator(settings), settings.idle_logout_s)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    asyncio.run(main(*sys.argv[1:4]))
