"""Fixtures: a config with console accounts, and the real console server behind a pty."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pexpect.fdpexpect
import pytest

from gateway.console.accounts import set_account
from gateway.console.api import Role

ROOT = Path(__file__).resolve().parents[3]
PASSWORDS = {"tech": "tech-pass-1", "viewer": "view-pass-1", "admin": "admin-pass-1"}
EXPECT_TIMEOUT_S = 15  # generous: CI machines are slow and scrypt runs on each login


def write_config(path: Path, idle_logout_s: float) -> Path:
    path.write_text(
        "# test gateway\n[gateway]\nid = \"gw-test-01\"\n\n"
        f"[console]\nsocket = \"{path.parent / 'control.sock'}\"\n"
        f"idle_logout_s = {idle_logout_s}\nlockout_after = 2\nlockout_base_s = 1.5\n"
        "lockout_max_s = 4\n"
    )
    for name, role in (("tech", Role.TECHNICIAN), ("viewer", Role.VIEWER), ("admin", Role.ADMIN)):
        set_account(path, name, role, PASSWORDS[name])
    return path


@dataclass
class ConsoleProcess:
    child: pexpect.fdpexpect.fdspawn
    proc: subprocess.Popen[str]
    master_fd: int
    socket: Path
    config: Path

    def login(self, user: str, password: str | None = None) -> None:
        self.child.expect("login: ")
        self.child.send(user + "\r")
        self.child.expect("password: ")
        self.child.send((password or PASSWORDS[user]) + "\r")
        self.child.expect(f"{user}> ")

    def run(self, line: str) -> str:
        """Send a command line; return what came before the next prompt."""
        self.child.send(line + "\r")
        self.child.expect(r"\w+> ")
        return str(self.child.before)


def start_console(tmp_path: Path, idle_logout_s: float) -> ConsoleProcess:
    config = write_config(tmp_path / "gateway.toml", idle_logout_s)
    master, slave = os.openpty()
    slave_path = os.ttyname(slave)
    socket = tmp_path / "control.sock"
    with open(tmp_path / "server.log", "w") as log:  # the child keeps its own copy of the fd
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.gateway.console.serve_pty", slave_path, str(socket),
             str(config)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
        )
    os.close(slave)  # the server opens the line by path, like a real tty
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY"
    child = pexpect.fdpexpect.fdspawn(master, timeout=EXPECT_TIMEOUT_S, encoding="utf-8",
                                      codec_errors="replace")
    child.send("\r")  # a technician presses Enter to get a prompt
    return ConsoleProcess(child, proc, master, socket, config)


def stop_console(console: ConsoleProcess) -> None:
    alive = console.proc.poll() is None
    console.proc.terminate()
    console.proc.wait(timeout=10)
    with contextlib.suppress(OSError):  # the hang-up test already closed it
        os.close(console.master_fd)
    assert alive, "the console server process died during the test"


@pytest.fixture
def console(tmp_path: Path) -> Iterator[ConsoleProcess]:
    proc = start_console(tmp_path, idle_logout_s=60)
    yield proc
    stop_console(proc)


@pytest.fixture
def idle_console(tmp_path: Path) -> Iterator[ConsoleProcess]:
    proc = start_console(tmp_path, idle_logout_s=1.5)
    yield proc
    stop_console(proc)
