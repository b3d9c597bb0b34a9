"""gateway.service: sandboxed (systemd-analyze security <= 4.0) yet able to do its job.

The job: serial ports, GPIO chips, the hardware watchdog, USB sticks mounted under /media after
start, the modem (D-Bus over AF_UNIX, mmcli, GPIO power cycle), MQTT over TCP/TLS, `time set`
(clock_settime), the console socket in /run/gateway and `config set` rewriting /etc/gateway.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = ROOT / "board" / "system"
UNIT = SYSTEM / "gateway.service"
MAX_EXPOSURE = 4.0

# Directives that confine the service: each needs a comment in the unit and a row in the docs.
HARDENING = (
    "SupplementaryGroups", "StateDirectory", "RuntimeDirectory",
    "ConfigurationDirectory", "UMask", "ProtectSystem", "ReadWritePaths", "ProtectHome",
    "PrivateTmp", "PrivateMounts", "ProtectProc", "ProtectKernelTunables",
    "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectHostname",
    "PrivateDevices", "DevicePolicy", "DeviceAllow", "NoNewPrivileges", "AmbientCapabilities",
    "CapabilityBoundingSet", "RestrictSUIDSGID", "RemoveIPC", "RestrictNamespaces",
    "LockPersonality", "RestrictRealtime", "SystemCallArchitectures", "SystemCallFilter",
    "SystemCallErrorNumber", "RestrictAddressFamilies",
)
needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="no systemd-analyze")


def service_section(text: str) -> dict[str, list[str]]:
    """[Service] KEY=value lines as KEY -> values in order (repeated keys accumulate)."""
    values: dict[str, list[str]] = {}
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


@pytest.fixture(scope="module")
def unit() -> dict[str, list[str]]:
    return service_section(UNIT.read_text())


def one(unit: dict[str, list[str]], key: str) -> str:
    assert key in unit, f"{key}= missing from gateway.service"
    assert len(unit[key]) == 1, f"{key}= set more than once"
    return unit[key][0]


def words(unit: dict[str, list[str]], key: str) -> list[str]:
    return [w for value in unit.get(key, []) for w in value.split()]


def is_yes(value: str | None) -> bool:
    return value is not None and value.lower() in ("yes", "true", "on", "1", "strict", "full")


@needs_analyze
def test_security_exposure_at_most_4(tmp_path: Path) -> None:
    copy = tmp_path / "gateway.service"
    shutil.copy(UNIT, copy)
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(copy)],
                            capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


@needs_analyze
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    # A staged root with the programs the unit runs; only the missing system targets (no
    # systemd tree in the staging root) may be reported.
    unit_dir = tmp_path / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    shutil.copy(UNIT, unit_dir / "gateway.service")
    program = tmp_path / "opt/gateway/venv/bin/gateway"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--root", str(tmp_path), str(unit_dir / "gateway.service")],
        capture_output=True, text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if line.strip() and not re.search(r"Unit \S+\.target not found", line)]
    assert complaints == []


def test_console_socket_directory(unit: dict[str, list[str]]) -> None:
    from gateway.console.accounts import DEFAULT_SOCKET
    from gateway.console.socket import SOCKET_MODE

    assert one(unit, "RuntimeDirectory") == "gateway"
    mode = int(one(unit, "RuntimeDirectoryMode"), 8)
    assert mode & 0o050 == 0o050, "group gateway must be able to enter /run/gateway"
    assert mode & 0o007 == 0, "others stay out of /run/gateway"
    assert SOCKET_MODE & 0o060 == 0o060, "group gateway must be able to connect"
    assert Path(DEFAULT_SOCKET).parent == Path("/run/gateway")
    template = tomllib.loads((SYSTEM / "gateway.toml.template").read_text())
    assert template["console"]["socket"] == DEFAULT_SOCKET


def test_config_directory_writable_for_config_set(unit: dict[str, list[str]]) -> None:
    assert one(unit, "ProtectSystem") == "strict"
    # config set writes a temp file in /etc/gateway and renames it over gateway.toml
    assert "/etc/gateway" in words(unit, "ReadWritePaths")
    assert one(unit, "User") == "gateway"


def test_time_set_capability_and_nothing_else(unit: dict[str, list[str]]) -> None:
    assert one(unit, "AmbientCapabilities") == "CAP_SYS_TIME"
    assert one(unit, "CapabilityBoundingSet") == "CAP_SYS_TIME"
    assert not is_yes(unit.get("ProtectClock", [None])[-1])
    filters = words(unit, "SystemCallFilter")
    assert "@system-service" in filters and "@clock" in filters
    assert not any(f.startswith("~") for f in filters)  # no deny list undoing the allow list
    assert one(unit, "SystemCallErrorNumber") == "EPERM"
    assert one(unit, "SystemCallArchitectures") == "native"
    assert is_yes(one(unit, "NoNewPrivileges"))


def test_devices_serial_gpio_watchdog_allowed(unit: dict[str, list[str]]) -> None:
    assert one(unit, "DevicePolicy") == "closed"
    assert not is_yes(unit.get("PrivateDevices", [None])[-1]), "would hide /dev/tty*, gpiochip*"
    allowed = {}
    for value in unit["DeviceAllow"]:
        name, _, rights = value.partition(" ")
        allowed[name] = rights
    for name in ("char-ttyUSB", "char-ttyAMA", "char-ttyS", "char-ttyACM", "char-gpiochip",
                 "char-watchdog", "/dev/watchdog"):
        assert name in allowed, name
        assert set("rw") <= set(allowed[name]), name
    # the majors of hot-plugged USB serial drivers must exist when the service starts
    modules = (SYSTEM / "modules-gateway.conf").read_text().split()
    assert "usbserial" in modules and "cdc_acm" in modules
    assert set(words(unit, "SupplementaryGroups")) == {"dialout", "gpio"}
    assert not is_yes(unit.get("PrivateUsers", [None])[-1]), "groups must stay real"


def test_usb_mounts_leds_network_and_python_still_work(unit: dict[str, list[str]]) -> None:
    paths = words(unit, "ReadWritePaths")
    assert "-/media" in paths or "/media" in paths
    # mounts made after start must propagate in: no private propagation, nothing over /media
    assert unit.get("MountFlags", ["slave"])[-1] != "private"
    for key in ("TemporaryFileSystem", "InaccessiblePaths", "BindPaths", "BindReadOnlyPaths"):
        assert not any("/media" in v for v in unit.get(key, [])), key
    # the LED class under ProtectKernelTunables (/sys read-only)
    if is_yes(unit.get("ProtectKernelTunables", [None])[-1]):
        assert any(p.lstrip("-") == "/sys/devices/platform/leds" for p in paths)
    families = words(unit, "RestrictAddressFamilies")
    assert {"AF_UNIX", "AF_INET", "AF_INET6"} <= set(families)
    assert "PrivateNetwork" not in unit and "IPAddressDeny" not in unit
    # ctypes/libffi and cffi callbacks may need writable+executable memory
    assert not is_yes(unit.get("MemoryDenyWriteExecute", [None])[-1])
    # /proc/net/route (modem default route) must stay visible
    assert unit.get("ProcSubset", ["all"])[-1] != "pid"


def test_every_hardening_setting_has_a_comment_and_a_docs_row(
        unit: dict[str, list[str]]) -> None:
    lines = [line.strip() for line in UNIT.read_text().splitlines()]
    docs = (ROOT / "docs" / "install.md").read_text()
    missing_comment, missing_doc = [], []
    for key in HARDENING:
        assert key in unit, f"{key}= missing from gateway.service"
        for i, line in enumerate(lines):
            if line.startswith(f"{key}="):
                before = lines[i - 1]
                if not (before.startswith("#") or before.split("=")[0] == key):
                    missing_comment.append(key)
        if f"`{key}=" not in docs:
            missing_doc.append(key)
    assert missing_comment == []
    assert missing_doc == []
