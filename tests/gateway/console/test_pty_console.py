"""The real console server over a real pseudo-terminal: login, lockout, commands, bad input."""

from __future__ import annotations

import os
from pathlib import Path

from gateway.console.socket import RemoteApi
from tests.gateway.console.conftest import ConsoleProcess
from tests.harness.lingering import run_checked


def test_login_and_status(console: ConsoleProcess) -> None:
    console.login("tech")
    out = console.run("status")
    assert "gw-test-01" in out
    assert "1 d 02 h 03 min" in out  # 93784 s uptime, with units
    assert "backlog 7 records" in out
    assert "rs485-1" in out and "1204 frames" in out


def test_wrong_password_then_lockout_with_growing_delay(console: ConsoleProcess) -> None:
    child = console.child
    for _ in range(2):
        child.expect("login: ")
        child.send("tech\r")
        child.expect("password: ")
        child.send("wrong\r")
    child.expect(r"Login incorrect\. Wait (\d+) s")
    first_wait = int(child.match.group(1))
    # while locked, even the right password is refused
    child.expect("login: ")
    child.send("tech\r")
    child.expect("password: ")
    child.send("tech-pass-1\r")
    child.expect(r"Too many failed logins: wait \d+ s")
    assert first_wait >= 1


def test_lockout_delay_doubles(console: ConsoleProcess) -> None:
    from gateway.console.accounts import ConsoleSettings, LoginGuard

    now = [100.0]
    guard = LoginGuard(ConsoleSettings(lockout_after=2, lockout_base_s=5, lockout_max_s=18),
                       lambda: now[0])
    waits = []
    for _ in range(5):
        guard.check({}, "x", "y")
        waits.append(guard.wait_s())
    assert waits == [0.0, 5.0, 10.0, 18.0, 18.0]


def test_idle_logout(idle_console: ConsoleProcess) -> None:
    idle_console.login("viewer")
    idle_console.child.expect("Logged out after 2 s idle")
    idle_console.child.expect("login: ")


def test_every_command_has_help(console: ConsoleProcess) -> None:
    from gateway.console.commands import COMMANDS

    console.login("viewer")
    listing = console.run("help")
    for name, command in COMMANDS.items():
        assert command.usage[:20] in listing
        out = console.run(f"help {name}")
        assert f"Usage: {command.usage}" in out
        assert "Needs role:" in out
    for line in listing.splitlines():
        assert len(line) <= 80


def test_meters_read_scan_credit(console: ConsoleProcess) -> None:
    console.login("tech")
    out = console.run("meters")
    assert "shop-12" in out and "12.50 EUR" in out and "never" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    out = console.run("read shop-12")
    assert "230.1" in out and "kWh" in out
    out = console.run("read flat-3")
    assert "check the antenna" in out
    out = console.run("scan rs485-1 2")
    assert "UNKNOWN" in out and "1 not in the config" in out
    out = console.run("credit shop-12")
    assert "12.50 EUR" in out and "closed (supply on)" in out


def test_relay_with_confirmation_and_audit(console: ConsoleProcess) -> None:
    console.login("tech")
    child = console.child
    child.send("relay shop-12 off\r")
    child.expect("Type yes to confirm: ")
    child.send("no\r")
    child.expect("Cancelled")
    child.send("relay shop-12 off\r")
    child.expect("Type yes to confirm: ")
    child.send("yes\r")
    child.expect("open, supply off")
    child.expect("tech> ")
    out = console.run("log 5")
    assert "command=relay outcome=ok" in out


def test_topup_emergency_roles(console: ConsoleProcess) -> None:
    console.login("viewer")
    out = console.run("topup shop-12 10")
    assert "needs the technician role" in out
    console.child.send("logout\r")
    console.child.expect("Logged out")
    console.login("tech")
    out = console.run("topup shop-12 ten")
    assert "not a number" in out and "Usage: topup" in out
    console.child.send("topup shop-12 10.00\r")
    console.child.expect("Type yes to confirm: ")
    out = console.run("yes")
    assert "22.50 EUR" in out
    console.child.send("emergency shop-14\r")
    console.child.expect("Type yes to confirm: ")
    out = console.run("yes")
    assert "ACTIVE" in out
    assert "needs the admin role" in console.run('config set uplink.host "x"')


def test_config_keys_uplink_time_export(console: ConsoleProcess, tmp_path: Path) -> None:
    console.login("admin")
    assert "mqtt.example.net" in console.run("config show")
    assert "Config OK." in console.run("config check")
    assert "Saved uplink.host" in console.run('config set uplink.host "\\"new.host\\""')
    assert "unknown key" in console.run("config set nope 1")
    assert "k-uplink-1" in console.run("keys show")
    assert "Sent 7 records" in console.run("uplink flush")
    assert "2026-12-01 10:00:00Z" in console.run("time set 2026-12-01T10:00:00Z")
    assert "add the zone" in console.run("time set 2026-12-01T10:00:00")
    out = console.run(f"export --to {tmp_path} --from 2026-11-01 --until 2026-11-30")
    assert "readings_2026-11-01_2026-11-30.csv" in out
    assert "plug in the stick" in console.run("export --to /nonexistent/usb")
    assert "Usage: export" in console.run("export /media/usb0")


def test_log_trace_switches_per_protocol(console: ConsoleProcess) -> None:
    console.login("viewer")
    assert "needs the technician role" in console.run("log trace modbus on")
    console.child.send("logout\r")
    console.child.expect("Logged out")
    console.login("tech")
    assert "Wire bytes at TRACE: modbus" in console.run("log trace modbus on")
    assert "no bus of protocol 'dlms'" in console.run("log trace dlms on")
    assert "on or off" in console.run("log trace modbus maybe")
    assert "Wire bytes at TRACE: none" in console.run("log trace modbus off")


def test_log_follow_stops_on_ctrl_c(console: ConsoleProcess) -> None:
    console.login("tech")
    console.child.send("log -f\r")
    console.child.expect("following; press Ctrl-C")
    console.child.send("\x03")
    console.child.expect("tech> ")
    assert "tech (technician)" in console.run("whoami")


def test_bad_input_does_not_crash(console: ConsoleProcess) -> None:
    console.login("tech")
    assert "Unknown command 'frobnicate'" in console.run("frobnicate")
    assert "Usage: read METER" in console.run("read")
    assert "Usage: relay" in console.run("relay shop-12 maybe")
    assert "close your quotes" in console.run('read "shop-12')
    # binary garbage: control bytes, 8-bit bytes, broken escape sequences
    console.child.send("\x00\x01\x02\xff\xfe\x1b[99;99;99;99;99;99;99;99;99x\x1b\x1b[\x90zz\r")
    console.child.expect("tech> ")
    console.child.send("x" * 5000 + "\r")  # longer than MAX_LINE: cut, then unknown command
    console.child.expect("Unknown command")
    console.child.expect("tech> ")
    assert "tech (technician)" in console.run("whoami")


def test_line_editing_history_and_completion(console: ConsoleProcess) -> None:
    console.login("tech")
    out = console.run("whoamX\x7fi")  # backspace (DEL)
    assert "tech (technician)" in out
    console.child.send("garbage\x15whoami\r")  # Ctrl-U clears the line
    console.child.expect(r"tech \(technician\)")
    console.child.expect("tech> ")
    console.child.send("\x1b[A\r")  # arrow up recalls whoami
    console.child.expect(r"tech \(technician\)")
    console.child.expect("tech> ")
    console.child.send("cre\tsho\t\t")  # ambiguous: completes "shop-1", then lists both
    console.child.expect("shop-12  shop-14")
    console.child.send("2\r")
    console.child.expect("12.50 EUR")
    console.child.expect("tech> ")


def test_hang_up_mid_command_keeps_service(console: ConsoleProcess) -> None:
    console.login("tech")
    console.child.send("relay shop-12 off\r")
    console.child.expect("Type yes to confirm: ")
    os.close(console.master_fd)  # the laptop is unplugged mid-command
    # the service (same process) still answers on its control socket

    async def ask() -> str:
        api = await RemoteApi.connect(console.socket)
        try:
            await api.login("viewer", "view-pass-1")
            return (await api.status()).gateway_id
        finally:
            await api.close()

    assert run_checked(ask()) == "gw-test-01"
    assert console.proc.poll() is None


def test_pasted_login_and_password_do_not_echo_the_password(console: ConsoleProcess) -> None:
    console.child.expect("login: ")
    console.child.send("tech\rtech-pass-1\rwhoami\r")  # all in one write: typed ahead
    console.child.expect(r"tech \(technician\)")
    assert "tech-pass-1" not in str(console.child.before)


def test_a_bug_behind_a_command_brings_back_the_login(console: ConsoleProcess) -> None:
    console.login("tech")
    console.child.send("read bug\r")
    console.child.expect("Reading bug")
    console.login("tech")  # the session restarted; the service did not stop
    assert "tech (technician)" in console.run("whoami")


def test_restart_needs_technician_and_confirmation(console: ConsoleProcess) -> None:
    console.login("viewer")
    assert "needs the technician role" in console.run("restart")
    console.child.send("logout\r")
    console.child.expect("Logged out")
    console.login("tech")
    console.child.send("restart\r")
    console.child.expect("Type yes to confirm: ")
    assert "Not restarted" in console.run("no")
    console.child.send("restart\r")
    console.child.expect("Type yes to confirm: ")
    assert "Restarting the service" in console.run("yes")
    assert "command=restart outcome=ok" in console.run("log 5")
