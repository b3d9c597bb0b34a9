"""Watchdogs: systemd sd_notify over $NOTIFY_SOCKET (written by hand) and /dev/watchdog.

The service is restarted by systemd when it stops sending WATCHDOG=1 within WatchdogSec; it sends
it only while the scheduler, storage and uplink have all shown life recently (the service's
`gateway/app/supervision.py` decides), so
a hung bus or a blocked loop gets the service restarted. Relays are not touched by any of this:
their lines stay as driven while the process restarts.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
import struct
from pathlib import Path

from board.interface import BoardError

LOGGER = logging.getLogger(__name__)

WDIOC_SETTIMEOUT = 0xC0045706  # _IOWR('W', 6, int) from linux/watchdog.h
MAGIC_CLOSE = b"V"  # tells the driver a close is deliberate, so it disarms instead of rebooting


class SystemdNotifier:
    """sd_notify(3) without libsystemd: one datagram per state line to $NOTIFY_SOCKET."""

    def __init__(self, socket_path: str | None) -> None:
        self._address = _socket_address(socket_path) if socket_path else None
        self._sock: socket.socket | None = None

    @classmethod
    def from_environment(cls) -> SystemdNotifier:
        """Notifier for the socket systemd passed in (a no-op when not run by systemd)."""
        return cls(os.environ.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *fields: str) -> bool:
        """Send KEY=VALUE lines; False (logged) when the socket is gone, never an exception."""
        if self._address is None:
            return False
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self._sock.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:
            LOGGER.warning("sd_notify_failed", extra={"error": str(exc), "fields": list(fields)})
            return False
        return True

    def ready(self, status: str = "running") -> bool:
        return self.notify("READY=1", f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1", "STATUS=stopping")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _socket_address(path: str) -> str | bytes:
    if path.startswith("@"):
        return b"\0" + path[1:].encode()  # Linux abstract namespace
    if not path.startswith("/"):
        raise BoardError(f"NOTIFY_SOCKET {path!r} is neither an absolute path nor @abstract")
    return path


def watchdog_interval_s(environ: dict[str, str] | None = None) -> float | None:
    """Half of systemd's WatchdogSec (from $WATCHDOG_USEC), the interval sd_watchdog_enabled(3)
    recommends; None when systemd expects no pings from this process."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        raise BoardError(f"WATCHDOG_USEC {usec!r} is not an integer") from None
    return value / 2_000_000 if value > 0 else None


class HardwareWatchdog:
    """The kernel watchdog device: any write pets it; 'V' before close disarms it (magic close).

    Use it only where systemd's RuntimeWatchdogSec does not already own /dev/watchdog.
    """

    def __init__(self, path: Path, *, timeout_s: int | None = None) -> None:
        self.path = path
        try:
            self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            hint = " (systemd RuntimeWatchdogSec owns it?)" if exc.errno == errno.EBUSY else ""
            raise BoardError(f"watchdog {path}: cannot open: {exc.strerror}{hint}") from exc
        if timeout_s is not None:
            self._set_timeout(timeout_s)
        LOGGER.info("hardware_watchdog_armed", extra={"path": str(path), "timeout_s": timeout_s})

    def _set_timeout(self, timeout_s: int) -> None:
        assert self._fd is not None
        try:
            fcntl.ioctl(self._fd, WDIOC_SETTIMEOUT, struct.pack("i", timeout_s))
        except OSError as exc:
            # Not every driver can change its timeout; the default one still protects us.
            LOGGER.warning("watchdog_timeout_unchanged",
                           extra={"path": str(self.path), "error": str(exc)})

    def kick(self) -> None:
        if self._fd is None:
            raise BoardError(f"watchdog {self.path}: already closed")
        try:
            os.write(self._fd, b"\0")
        except OSError as exc:
            raise BoardError(f"watchdog {self.path}: cannot write: {exc.strerror}") from exc

    def close(self, *, disarm: bool = True) -> None:
        """Close; with disarm=False (a crash path) the board resets when the timeout runs out."""
        if self._fd is None:
            return
        try:
            if disarm:
                os.write(self._fd, MAGIC_CLOSE)
        finally:
            os.close(self._fd)
            self._fd = None
        LOGGER.info("hardware_watchdog_closed", extra={"path": str(self.path), "disarmed": disarm})
