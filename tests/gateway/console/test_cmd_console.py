"""`gateway console` (SSH, over the control socket), `--port DEV`, and `console passwd`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pexpect.fdpexpect

from gateway.console.accounts import load_settings, verify_password
from gateway.console.api import Role
from tests.gateway.console.conftest import EXPECT_TIMEOUT_S, ROOT, ConsoleProcess

CLI = [sys.executable, "-m", "gateway.cli"]  # the real entry point, with discovery


def spawn(args: list[str]) -> pexpect.spawn:
    return pexpect.spawn(CLI[0], [*CLI[1:], *args], cwd=str(ROOT), timeout=EXPECT_TIMEOUT_S,
                         encoding="utf-8", codec_errors="replace")


def test_console_over_socket_like_ssh(console: ConsoleProcess) -> None:
    child = spawn(["console", "--config", str(console.config), "--socket", str(console.socket)])
    child.expect("login: ")
    child.send("tech\r")
    child.expect("password: ")
    child.send("tech-pass-1\r")
    child.expect("tech> ")
    child.send("status\r")
    child.expect("backlog 7 records")
    child.expect("tech> ")
    child.send("relay shop-14 on\r")
    child.expect("Type yes to confirm: ")
    child.send("yes\r")
    child.expect("closed, supply on")
    child.expect("tech> ")
    child.send("config set uplink.host x\r")
    child.expect("needs the admin role")
    child.expect("tech> ")
    child.send("log 3\r")
    child.expect("command=relay outcome=ok")  # audited by the service under "tech"
    child.expect("tech> ")
    child.send("logout\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_console_without_service_says_what_to_check(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f'[console]\nsocket = "{tmp_path / "none.sock"}"\n')
    child = spawn(["console", "--config", str(config)])
    child.expect("is it running")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1


def test_console_on_a_serial_port_via_the_socket(console: ConsoleProcess, tmp_path: Path) -> None:
    master, slave = os.openpty()
    port = os.ttyname(slave)
    with open(tmp_path / "port.log", "w") as log:
        proc = subprocess.Popen([*CLI, "console", "--config", str(console.config), "--port", port,
                                 "--socket", str(console.socket)], cwd=ROOT, stderr=log)
    # keep our slave fd open: with no slave open, reads on the master fail with EIO (EOF)
    line = pexpect.fdpexpect.fdspawn(master, timeout=EXPECT_TIMEOUT_S, encoding="utf-8",
                                     codec_errors="replace")
    try:
        line.send("\r")
        line.expect("login: ")
        line.send("viewer\r")
        line.expect("password: ")
        line.send("view-pass-1\r")
        line.expect("viewer> ")
        line.send("meters\r")
        line.expect("shop-14")
        line.expect("viewer> ")
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        os.close(master)
        os.close(slave)


def test_passwd_sets_an_account(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text("# keep me\n[gateway]\nid = \"gw-1\"\n")
    child = spawn(["console", "passwd", "--config", str(config), "ana", "--role", "technician"])
    child.expect("New password: ")
    child.sendline("long-enough-1")
    child.expect("Repeat password: ")
    child.sendline("long-enough-1")
    child.expect("saved in")
    child.expect(pexpect.EOF)
    account = load_settings(config).accounts["ana"]
    assert account.role == Role.TECHNICIAN
    assert verify_password("long-enough-1", account.password_hash)
    assert config.read_text().startswith("# keep me\n")


def test_passwd_refuses_short_and_mismatched(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    short = subprocess.run([*CLI, "console", "passwd", "--config", str(config), "ana", "--role",
                            "viewer", "--password-stdin"], input="short\n", text=True,
                           capture_output=True, cwd=ROOT)
    assert short.returncode == 2 and "at least 8" in short.stderr
    child = spawn(["console", "passwd", "--config", str(config), "ana", "--role", "viewer"])
    child.expect("New password: ")
    child.sendline("long-enough-1")
    child.expect("Repeat password: ")
    child.sendline("long-enough-2")
    child.expect("passwords differ")
    child.expect(pexpect.EOF)
    assert not config.exists()
