"""Run console sessions on a line: the serial port inside the service, a --port console, SSH."""

from __future__ import annotations

import asyncio
import logging

from gateway.console.api import ControlApi
from gateway.console.shell import Authenticator, run_session
from gateway.console.terminal import ByteTerminal, FdChannel

LOGGER = logging.getLogger(__name__)

RESTART_DELAY_S = 2.0  # after a crashed or hung-up session: do not spin on a dead line


async def serve_fd(
    read_fd: int,
    write_fd: int,
    api: ControlApi,
    auth: Authenticator,
    idle_logout_s: float,
    *,
    once: bool = False,
) -> None:
    """Serve sessions on an open line (serial port, pty, tty) until it hangs up.

    With once=True the first logout ends it (the SSH `gateway console`); otherwise the login
    prompt comes back for the next technician.
    """
    channel = FdChannel(read_fd, write_fd)
    term = ByteTerminal(channel, idle_logout_s)
    try:
        await run_session(term, api, auth, once=once)
    finally:
        channel.close()


async def serve_forever(
    read_fd: int, write_fd: int, api: ControlApi, auth: Authenticator, idle_logout_s: float
) -> None:
    """Keep a console on a line for the life of the service.

    A bug in a command must never stop metering, so this is the one place that catches every
    exception of a session: it is logged with its traceback and the login prompt comes back.
    """
    while True:
        try:
            await serve_fd(read_fd, write_fd, api, auth, idle_logout_s)
        except asyncio.CancelledError:
            raise
        except Exception:
            LOGGER.exception("console_session_crashed", extra={"fd": read_fd})
        LOGGER.debug("console_line_restart", extra={"fd": read_fd})
        await asyncio.sleep(RESTART_DELAY_S)
