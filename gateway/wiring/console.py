"""Starts the technician console inside the service: the control socket and the serial line.

`start_console(service)` builds the console's ports from the running service
(gateway/wiring/console_ports.py) and starts both through the service's supervisor (not
critical: metering must go on without a console); its shutdown cancels them, which closes the
socket and the line. A console failure is logged and retried, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Protocol

from board.interface import Board, BoardError, SerialSpec
from gateway.app.supervision import Supervisor
from gateway.console.accounts import ConsoleSettings
from gateway.console.api import ControlApi, ControlError
from gateway.console.serve import RESTART_DELAY_S, serve_fd
from gateway.console.service_api import ServiceControlApi
from gateway.console.shell import LocalAuthenticator
from gateway.console.socket import ControlServer
from gateway.wiring.console_ports import console_ports
from gateway.wiring.host import ServiceView

LOGGER = logging.getLogger(__name__)

# A console port that cannot be opened (USB gadget not up yet) is retried after this pause,
# doubling up to the cap, so a missing port neither spins nor waits long once it appears.
PORT_RETRY_MIN_S = 5.0
PORT_RETRY_MAX_S = 300.0
# The socket is retried too: /run/gateway may appear after the service (tmpfiles.d).
SOCKET_RETRY_S = 30.0


class ConsoleHost(ServiceView, Protocol):
    """The running service as the console's start-up sees it (no import of its class)."""

    @property
    def supervisor(self) -> Supervisor: ...


def start_console(service: ConsoleHost) -> None:
    """Serve the control socket and, with `[console] port`, a login on that line."""
    settings: ConsoleSettings | None = service.config.console
    if settings is None:
        return
    api: ControlApi = ServiceControlApi(console_ports(service))
    service.supervisor.spawn("console-socket", functools.partial(_serve_socket, api, settings),
                             critical=False)
    if settings.port:
        service.supervisor.spawn("console-port",
                                 functools.partial(_serve_port, service.board, api, settings),
                                 critical=False)


async def _serve_socket(api: ControlApi, settings: ConsoleSettings) -> None:
    # one authenticator for every socket client: reconnecting does not reset the lockout
    server = ControlServer(api, LocalAuthenticator(settings), settings.socket)
    while True:
        try:
            await server.start()
            break
        except (ControlError, OSError) as exc:
            LOGGER.error("control_socket_failed", extra={"path": settings.socket,
                                                         "error": str(exc),
                                                         "retry_s": SOCKET_RETRY_S})
            await asyncio.sleep(SOCKET_RETRY_S)
    try:
        await asyncio.Event().wait()  # serve until the service cancels us
    finally:
        await server.close()


async def _serve_port(board: Board, api: ControlApi, settings: ConsoleSettings) -> None:
    assert settings.port is not None
    auth = LocalAuthenticator(settings)
    pause = PORT_RETRY_MIN_S
    while True:
        try:
            line = board.open_serial(SerialSpec(settings.port, settings.baudrate))
        except BoardError as exc:
            LOGGER.warning("console_port_unavailable", extra={"port": settings.port,
                                                              "error": str(exc),
                                                              "retry_s": pause})
            await asyncio.sleep(pause)
            pause = min(pause * 2, PORT_RETRY_MAX_S)
            continue
        pause = PORT_RETRY_MIN_S
        LOGGER.info("console_port_open", extra={"port": settings.port})
        try:
            await serve_fd(line.fileno(), line.fileno(), api, auth, settings.idle_logout_s)
        except asyncio.CancelledError:
            raise
        except Exception:
            # a bug behind a command must never stop metering: log it, offer a new login
            LOGGER.exception("console_session_crashed", extra={"port": settings.port})
        finally:
            with contextlib.suppress(Exception):
                line.close()
        # the line hung up (adapter unplugged, gadget reset): reopen it for the next login
        await asyncio.sleep(RESTART_DELAY_S)
