"""sd_notify over a real datagram socket, the liveness gate, and /dev/watchdog magic close."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from board.interface import BoardError
from board.watchdog import (
    HardwareWatchdog,
    SystemdNotifier,
    watchdog_interval_s,
)


@pytest.fixture
def notify_socket(tmp_path: Path):
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield path, sock
    sock.close()


def test_notify_messages_reach_the_socket(notify_socket: tuple[Path, socket.socket]) -> None:
    path, sock = notify_socket
    notifier = SystemdNotifier(str(path))
    assert notifier.ready("polling 12 meters")
    assert sock.recv(256) == b"READY=1\nSTATUS=polling 12 meters"
    assert notifier.watchdog()
    assert sock.recv(256) == b"WATCHDOG=1"
    assert notifier.stopping()
    assert sock.recv(256) == b"STOPPING=1\nSTATUS=stopping"
    notifier.close()


def test_abstract_socket_address() -> None:
    name = f"gateway-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    try:
        assert SystemdNotifier("@" + name).status("ok")
        assert sock.recv(64) == b"STATUS=ok"
    finally:
        sock.close()


def test_notifier_without_systemd_is_silent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert SystemdNotifier.from_environment().watchdog() is False
    assert SystemdNotifier(str(tmp_path / "gone")).watchdog() is False  # socket vanished
    with pytest.raises(BoardError, match="NOTIFY_SOCKET"):
        SystemdNotifier("relative/path")


def test_watchdog_interval_from_environment() -> None:
    pid = str(os.getpid())
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": pid}) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval_s({}) is None
    with pytest.raises(BoardError, match="WATCHDOG_USEC"):
        watchdog_interval_s({"WATCHDOG_USEC": "soon"})


def test_hardware_watchdog_kick_and_magic_close(tmp_path: Path) -> None:
    device = tmp_path / "watchdog"
    device.write_bytes(b"")
    dog = HardwareWatchdog(device, timeout_s=15)  # a plain file refuses the ioctl: logged only
    dog.kick()
    dog.kick()
    dog.close()
    assert device.read_bytes() == b"\0\0V"
    with pytest.raises(BoardError, match="closed"):
        dog.kick()


def test_hardware_watchdog_crash_path_and_missing_device(tmp_path: Path) -> None:
    device = tmp_path / "watchdog"
    device.write_bytes(b"")
    dog = HardwareWatchdog(device)
    dog.kick()
    dog.close(disarm=False)
    assert device.read_bytes() == b"\0"
    with pytest.raises(BoardError, match="cannot open"):
        HardwareWatchdog(tmp_path / "absent")
