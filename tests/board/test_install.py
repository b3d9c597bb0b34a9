"""install.sh / uninstall.sh in a throwaway DESTDIR: files laid down, idempotence, config kept."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

SYSTEM = Path(__file__).resolve().parents[2] / "board" / "system"
EXPECTED = {
    "etc/systemd/system/gateway.service": 0o644,
    "etc/udev/rules.d/60-gateway-serial.rules": 0o644,
    "etc/udev/rules.d/61-gateway-usb-storage.rules": 0o644,
    "etc/systemd/journald.conf.d/60-gateway.conf": 0o644,
    "etc/systemd/system.conf.d/60-gateway-watchdog.conf": 0o644,
    "etc/polkit-1/rules.d/60-gateway-modemmanager.rules": 0o644,
    "etc/modules-load.d/gateway.conf": 0o644,
    "etc/gateway/gateway.toml": 0o640,
    "opt/gateway/board/profiles/waveshare-rpi-relay-board.json": 0o644,
}


def run(script: str, root: Path, **env: str) -> str:
    result = subprocess.run(["sh", str(SYSTEM / script)], capture_output=True, text=True,
                            env={**os.environ, "DESTDIR": str(root), **env}, check=True,
                            timeout=60)
    return result.stdout


def snapshot(root: Path) -> dict[str, tuple[bytes, int, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mode, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_install_lays_down_files_with_modes(tmp_path: Path) -> None:
    out = run("install.sh", tmp_path)
    for rel, mode in EXPECTED.items():
        path = tmp_path / rel
        assert path.is_file(), rel
        assert stat.S_IMODE(path.stat().st_mode) == mode, rel
    assert (tmp_path / "etc/systemd/system/gateway.service").read_bytes() == (
        SYSTEM / "gateway.service").read_bytes()
    assert (tmp_path / "var/lib/gateway").is_dir()
    assert "skipped user, virtualenv" in out


def test_second_install_changes_nothing(tmp_path: Path) -> None:
    run("install.sh", tmp_path)
    before = snapshot(tmp_path)
    out = run("install.sh", tmp_path)
    assert snapshot(tmp_path) == before  # same bytes, same modes, not even rewritten
    assert "installed" not in out.replace("installed the", "")


def test_edited_config_survives_reinstall_and_uninstall(tmp_path: Path) -> None:
    run("install.sh", tmp_path)
    config = tmp_path / "etc/gateway/gateway.toml"
    config.write_text('gateway_id = "site-0042"\n')
    (tmp_path / "var/lib/gateway/gateway.db").write_bytes(b"SQLite format 3\x00")
    assert "kept existing" in run("install.sh", tmp_path)
    assert config.read_text() == 'gateway_id = "site-0042"\n'
    run("uninstall.sh", tmp_path)
    assert config.read_text() == 'gateway_id = "site-0042"\n'
    assert (tmp_path / "var/lib/gateway/gateway.db").exists()
    for rel in EXPECTED:
        if not rel.startswith("etc/gateway"):
            assert not (tmp_path / rel).exists(), rel
    run("uninstall.sh", tmp_path)  # a second uninstall is harmless


def test_purge_removes_config_and_data(tmp_path: Path) -> None:
    run("install.sh", tmp_path)
    run("uninstall.sh", tmp_path, PURGE="1")
    remaining = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert remaining == []


def test_installed_config_serves_the_console_in_run_gateway(tmp_path: Path) -> None:
    from gateway.console.accounts import DEFAULT_SOCKET

    run("install.sh", tmp_path)
    text = (tmp_path / "etc/gateway/gateway.toml").read_text()
    console = tomllib.loads(text)["console"]
    assert Path(console["socket"]).parent == Path("/run/gateway")
    assert console["socket"] == DEFAULT_SOCKET  # `gateway console` without a config agrees
    assert "usermod -a -G gateway" in text  # the comment says who may connect


def test_config_owned_by_the_service_and_group_readable(tmp_path: Path) -> None:
    out = run("install.sh", tmp_path)
    assert stat.S_IMODE((tmp_path / "etc/gateway").stat().st_mode) == 0o750
    # the live install makes both the service's (config set renames in the directory)
    assert "would run: chown gateway:gateway /etc/gateway /etc/gateway/gateway.toml" in out
    config = tmp_path / "etc/gateway/gateway.toml"
    config.chmod(0o644)  # e.g. after an edit: password hashes readable by everyone
    out = run("install.sh", tmp_path)
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert "would run: chown gateway:gateway /etc/gateway /etc/gateway/gateway.toml" in out
    assert "usermod -a -G gateway USER" in out


def test_gateway_command_on_path(tmp_path: Path) -> None:
    out = run("install.sh", tmp_path)
    link = tmp_path / "usr/local/bin/gateway"
    assert link.is_symlink()
    assert os.readlink(link) == "/opt/gateway/venv/bin/gateway"
    assert "installed /usr/local/bin/gateway" in out
    assert "unchanged /usr/local/bin/gateway" in run("install.sh", tmp_path)
    run("uninstall.sh", tmp_path)
    assert not link.is_symlink()


def test_path_link_follows_prefix_and_spares_a_foreign_file(tmp_path: Path) -> None:
    run("install.sh", tmp_path, PREFIX="/opt/gw2")
    link = tmp_path / "usr/local/bin/gateway"
    assert os.readlink(link) == "/opt/gw2/venv/bin/gateway"
    run("uninstall.sh", tmp_path)  # default PREFIX: not its link, kept
    assert link.is_symlink()
    run("uninstall.sh", tmp_path, PREFIX="/opt/gw2")
    assert not link.is_symlink()
    link.write_text("#!/bin/sh\n# someone else's gateway\n")
    out = run("install.sh", tmp_path)
    assert "not a symlink" in out
    run("uninstall.sh", tmp_path)
    assert link.read_text().startswith("#!/bin/sh")


def test_template_config_validates(tmp_path: Path) -> None:
    from gateway.config.loader import load_config

    path = tmp_path / "gateway.toml"
    text = (SYSTEM / "gateway.toml.template").read_text().replace("CHANGE-ME", "site-0042")
    path.write_text(text)
    assert load_config(str(path)).gateway_id == "site-0042"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_unit_file_has_no_unknown_directives(tmp_path: Path) -> None:
    run("install.sh", tmp_path)
    unit = tmp_path / "etc/systemd/system/gateway.service"
    result = subprocess.run(["systemd-analyze", "verify", "--root", str(tmp_path), str(unit)],
                            capture_output=True, text=True, timeout=60)
    complaints = [line for line in result.stderr.splitlines()
                  if "Unknown" in line or "Failed to parse" in line or "Invalid" in line]
    assert complaints == []
