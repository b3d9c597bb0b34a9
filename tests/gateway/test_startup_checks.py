"""`check-config` and `run` report what the service would trip on: one line per problem naming
the file and the key, exit status 2, never a traceback (the real CLI, with broken sites)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.app.service import Service, make_board
from gateway.cli.main import main
from gateway.config.loader import load_config
from uplink.keys import create_private_key, public_pem

ROOT = Path(__file__).resolve().parents[2]
AS_ROOT = os.geteuid() == 0
UNSHARE = shutil.which("unshare")

BASE = """
gateway_id = "gw-t"

[storage]
path = "data/gw.db"
"""

UPLINK = """
[uplink]
broker_url = "mqtt://127.0.0.1:1883"
key_file = "keys/gateway.pem"
server_public_key = "keys/server.pem"
"""

PREPAY = """
[prepay]
timezone = "Europe/Paris"
currency = "EUR"
voucher_keys = { k1 = "keys/voucher.pem" }

[prepay.tariffs.flat]
currency = "EUR"
versions = [ { effective_from = "2026-01-01", price = "0.30" } ]
"""

WMBUS = """
[[bus]]
id = "radio"
port = "/dev/ttyUSB9"
dongle = "im871a"
link_mode = "T1"
key_file = "keys/wmbus.keys"
"""


def site(tmp_path: Path, *parts: str) -> Path:
    """A site directory with every key file in place; the test breaks one thing."""
    keys = tmp_path / "keys"
    keys.mkdir()
    create_private_key(keys / "gateway.pem")
    for name in ("server.pem", "voucher.pem"):
        (keys / name).write_text(public_pem(create_private_key(tmp_path / f"{name}.private")))
    config = tmp_path / "site.toml"
    config.write_text(textwrap.dedent("".join((BASE, *parts))))
    return config


def check(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """Run the CLI in-process: an exception would fail the test, the traceback it would print."""
    status = main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return status, err.splitlines()


def cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real entry point in a process of its own (what the technician and systemd run)."""
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def assert_one_problem(lines: list[str], config: Path, key: str, words: str) -> None:
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"config error: {config}: key `{key}`: "), lines
    assert words in lines[0], lines


def test_good_site_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = site(tmp_path, UPLINK, PREPAY, WMBUS)
    assert check(["check-config", str(config)], capsys) == (0, [])


def write(path: Path, text: str, mode: int = 0o644, make_parent: bool = False) -> None:
    if make_parent:
        path.parent.mkdir(parents=True)
    path.write_text(text)
    path.chmod(mode)


BREAKAGES = {
    "voucher key missing": (lambda d: (d / "keys/voucher.pem").unlink(),
                            "prepay.voucher_keys.k1", "cannot read key file"),
    "voucher key not PEM": (lambda d: write(d / "keys/voucher.pem", "not a key"),
                            "prepay.voucher_keys.k1", "not a PEM public key"),
    "gateway key missing": (lambda d: (d / "keys/gateway.pem").unlink(),
                            "uplink.key_file", "gateway keys init"),
    "server key not PEM": (lambda d: write(d / "keys/server.pem", "garbage"),
                           "uplink.server_public_key", "not a PEM public key"),
    "wmbus keys malformed": (lambda d: write(d / "keys/wmbus.keys", "12345678 00\n", 0o600),
                             "bus[0].key_file", "expected 'METERID"),
    "wmbus keys world-readable": (lambda d: write(d / "keys/wmbus.keys", "# none\n", 0o644),
                                  "bus[0].key_file", "chmod 600"),
    "database is a directory": (lambda d: (d / "data/gw.db").mkdir(parents=True),
                                "storage.path", "is a directory, not a database file"),
    "state dir is a file": (lambda d: write(d / "data/board", "", make_parent=True),
                            "board.state_dir", "not a directory"),
}


@pytest.mark.parametrize("command", ["check-config", "run"])
@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_missing_or_broken_file_named_by_its_key(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 command: str, breakage: str) -> None:
    config = site(tmp_path, UPLINK, PREPAY, WMBUS)
    break_it, key, words = BREAKAGES[breakage]
    break_it(tmp_path)
    args = ["check-config", str(config)] if command == "check-config" else \
        ["run", "--config", str(config)]
    status, lines = check(args, capsys)
    assert status == 2
    assert_one_problem(lines, config, key, words)


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ('timezone = "Mars/Olympus"\n' + BASE, "timezone", "unknown time zone 'Mars/Olympus'"),
        ('timezone = "Europe"\n' + BASE, "timezone", "unknown time zone"),
        (BASE + UPLINK.replace("mqtt://127.0.0.1:1883", "http://broker"), "uplink.broker_url",
         "expected mqtt://host"),
        (BASE.replace('"data/gw.db"', '" "'), "storage.path", "must not be empty"),
        (BASE + PREPAY.replace('"Europe/Paris"', '"Europe"').replace("voucher_keys", "# "),
         "prepay.timezone", "unknown time zone 'Europe'"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                 key: str, words: str) -> None:
    site(tmp_path)
    config = tmp_path / "bad.toml"
    config.write_text(text)
    status, lines = check(["check-config", str(config)], capsys)
    assert status == 2
    assert_one_problem(lines, config, key, words)


def test_every_problem_at_once_syntax_and_files(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = site(tmp_path, UPLINK, PREPAY, WMBUS)
    config.write_text('timezone = "Nowhere/City"\n' +
                      config.read_text().replace("mqtt://127.0.0.1:1883", "tcp://x"))
    (tmp_path / "keys/voucher.pem").unlink()
    (tmp_path / "data").write_text("")
    status, lines = check(["run", "--config", str(config)], capsys)
    assert status == 2
    named = sorted(line.split("`")[1] for line in lines)
    # with the URL invalid the [uplink] settings are not built, so its keys are not looked at
    assert named == ["board.state_dir", "prepay.voucher_keys.k1", "storage.path", "timezone",
                     "uplink.broker_url"]


def test_tls_files_must_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    tls = 'tls_ca = "ca.pem"\ntls_cert = "missing-cert.pem"\n'
    config = site(tmp_path, UPLINK + tls)
    status, lines = check(["check-config", str(config)], capsys)
    assert status == 2
    assert sorted(line.split("`")[1] for line in lines) == ["uplink.tls_ca", "uplink.tls_cert"]


def test_rpi_board_profile_and_watchdog(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = site(tmp_path, '\n[board]\nkind = "rpi"\nprofile = "no-such-board"\n'
                            'hardware_watchdog = "/dev/no-such-watchdog"\n')
    status, lines = check(["check-config", str(config)], capsys)
    assert status == 2
    assert sorted(line.split("`")[1] for line in lines) == ["board.hardware_watchdog",
                                                            "board.profile"]


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    config = load_config(site(tmp_path, '\n[board]\nstate_dir = "state"\n', UPLINK, PREPAY,
                              WMBUS))
    assert config.board["state_dir"] == str(tmp_path / "state")
    assert config.bus("radio").options["key_file"] == str(tmp_path / "keys/wmbus.keys")
    assert config.prepay.voucher_keys["k1"] == str(tmp_path / "keys/voucher.pem")
    assert config.uplink.key_file == tmp_path / "keys/gateway.pem"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = cli(["check-config", str(tmp_path / "site.toml")], cwd=elsewhere)
    assert done.returncode == 0, done.stderr


def test_state_dir_in_a_file_is_one_line_from_the_real_cli(tmp_path: Path) -> None:
    config = site(tmp_path, '\n[board]\nstate_dir = "blocker/state"\n')
    (tmp_path / "blocker").write_text("")
    done = cli(["run", "--config", str(config)], cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert_one_problem(done.stderr.splitlines(), config, "board.state_dir",
                       f"{tmp_path / 'blocker'} is not a directory")


@pytest.mark.skipif(AS_ROOT, reason="root ignores directory permissions")
@pytest.mark.parametrize(("directory", "key"), [("data/board", "board.state_dir"),
                                                ("data", "storage.path")])
def test_read_only_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               directory: str, key: str) -> None:
    config = site(tmp_path)
    (tmp_path / directory).mkdir(parents=True)
    (tmp_path / directory).chmod(0o555)
    try:
        status, lines = check(["run", "--config", str(config)], capsys)
    finally:
        (tmp_path / directory).chmod(0o755)
    assert status == 2
    assert_one_problem(lines, config, key, "not writable")


def read_only_mount_works(directory: Path) -> bool:
    if not AS_ROOT or UNSHARE is None:
        return False
    probe = subprocess.run([UNSHARE, "-m", "sh", "-c",
                            f"mount --bind -o ro '{directory}' '{directory}'"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.mark.parametrize(("directory", "key"), [("data/board", "board.state_dir"),
                                                ("data", "storage.path")])
def test_read_only_mount_from_the_real_cli(tmp_path: Path, directory: str, key: str) -> None:
    """As a worn SD card does: the directory is there, on a file system mounted read-only."""
    config = site(tmp_path)
    target = tmp_path / directory
    target.mkdir(parents=True)
    if not read_only_mount_works(target):
        pytest.skip("needs root and unshare to make a read-only mount")
    command = (f"mount --bind -o ro '{target}' '{target}' && "
               f"exec '{sys.executable}' -m gateway.cli run --config '{config}'")
    done = subprocess.run([str(UNSHARE), "-m", "sh", "-c", command], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert any(line.startswith(f"config error: {config}: key `{key}`: ") and
               f"directory {target} is not writable" in line for line in lines), lines
    assert len(lines) == (2 if directory == "data" else 1), lines  # data/board is inside data


def test_board_state_dir_failure_is_a_board_error(tmp_path: Path) -> None:
    """If the directory turns unusable after the checks, the service still names it."""
    from board.interface import BoardError

    config = load_config(site(tmp_path, '\n[board]\nstate_dir = "blocker/state"\n'))
    (tmp_path / "blocker").write_text("")
    with pytest.raises(BoardError, match=r"board\.state_dir .*blocker/state"):
        make_board(config)


def test_database_directory_is_made_on_open(tmp_path: Path) -> None:
    config = load_config(site(tmp_path, '\n[board]\nstate_dir = "state"\n'))
    service = Service(config)
    service.open()
    assert service.store is not None
    service.store.close()
    assert (tmp_path / "data/gw.db").exists()
