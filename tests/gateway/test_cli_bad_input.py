"""Every `gateway` sub-command answers bad input with one line and a non-zero exit status.

Unknown meters, missing or foreign files, bad hex, values out of range: the technician gets
one line saying what is wrong, never a traceback. A genuinely unexpected exception still shows
its traceback (it is a bug).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.main import main
from storage.errors import StoreCorrupt
from storage.store import Store

GOOD_KEY = "00112233445566778899aabbccddeeff"


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """main() in-process; an escaping exception fails the test (it would be a traceback)."""
    try:
        status = main(args)
    except SystemExit as exc:  # argparse: usage line and exit 2
        status = int(exc.code or 0)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, captured.err.splitlines()


def one_line(lines: list[str], words: str) -> None:
    assert len(lines) == 1, lines
    assert words in lines[0], lines


def usage_error(lines: list[str], words: str) -> None:
    """argparse's answer: the usage, then one `error:` line."""
    assert lines[-1].startswith("gateway ") and "error:" in lines[-1], lines
    assert words in lines[-1], lines


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A config and its database, holding one meter `m1` without readings."""
    store = Store.open(tmp_path / "gw.db")
    store.upsert_meter("m1", protocol="modbus", bus="b1", address="1", profile="p")
    store.close()
    config = tmp_path / "site.toml"
    config.write_text('gateway_id = "gw"\n[storage]\npath = "gw.db"\n'
                      '[board]\nstate_dir = "board"\n')
    return config


# -- run / check-config ------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["run", "--config"], ["check-config"]])
@pytest.mark.parametrize(("make", "words"), [
    (lambda p: None, "file not found"),
    (lambda p: p.mkdir(), "cannot read"),
    (lambda p: p.write_bytes(b"\xff\xfe"), "cannot read"),
    (lambda p: p.write_text("gateway_id = "), "not valid TOML"),
])
def test_run_and_check_config_unusable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            command: list[str], make: object,
                                            words: str) -> None:
    path = tmp_path / "site.toml"
    make(path)  # type: ignore[operator]
    status, lines = run([*command, str(path)], capsys)
    assert status == 2
    one_line(lines, words)


# -- readings ----------------------------------------------------------------------------------

def test_readings_unknown_meter(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = run(["readings", "--config", str(site), "--meter", "UNKNOWN"], capsys)
    assert status == 1
    one_line(lines, "no meter 'UNKNOWN'")


def test_readings_known_meter_without_readings(site: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = run(["readings", "--config", str(site), "--meter", "m1"], capsys)
    assert status == 1
    one_line(lines, "no readings stored for meter 'm1'")


@pytest.mark.parametrize(("db", "words"), [
    ("absent.db", "does not exist"),
    ("site.toml", "not an SQLite database"),
    (".", "is a directory"),
])
def test_readings_unusable_database(site: Path, capsys: pytest.CaptureFixture[str], db: str,
                                    words: str) -> None:
    status, lines = run(["readings", "--db", str(site.parent / db), "--meter", "m1"], capsys)
    assert status == 1
    one_line(lines, words)


@pytest.mark.parametrize("last", ["0", "-3", "ten"])
def test_readings_bad_count(site: Path, capsys: pytest.CaptureFixture[str], last: str) -> None:
    status, lines = run(["readings", "--config", str(site), "--meter", "m1", "--last", last],
                        capsys)
    assert status == 2
    usage_error(lines, "--last")


def test_readings_config_problem_is_exit_2(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = run(["readings", "--config", str(tmp_path / "no.toml"), "--meter", "m1"],
                        capsys)
    assert status == 2
    one_line(lines, "file not found")


def test_project_error_escaping_a_command_is_one_line(site: Path,
                                                      capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def damaged(*_args: object) -> None:
        raise StoreCorrupt("gw.db: reading failed: database disk image is malformed")

    monkeypatch.setattr(Store, "last_readings", damaged)
    status, lines = run(["readings", "--config", str(site), "--meter", "m1"], capsys)
    assert status == 1
    one_line(lines, "gateway readings: error: gw.db: reading failed")


def test_unexpected_exception_keeps_its_traceback(site: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(*_args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Store, "last_readings", bug)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["readings", "--config", str(site), "--meter", "m1"])


# -- prepay ------------------------------------------------------------------------------------

@pytest.mark.parametrize("action", ["account", "ledger"])
def test_prepay_unknown_meter(site: Path, capsys: pytest.CaptureFixture[str],
                              action: str) -> None:
    status, lines = run(["prepay", action, "--config", str(site), "--meter", "UNKNOWN"], capsys)
    assert status == 1
    one_line(lines, "no meter 'UNKNOWN'")


@pytest.mark.parametrize("action", ["account", "ledger"])
def test_prepay_config_problem_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         action: str) -> None:
    status, lines = run(["prepay", action, "--config", str(tmp_path / "no.toml"), "--meter",
                         "m1"], capsys)
    assert status == 2
    one_line(lines, "file not found")


def test_prepay_ledger_bad_count(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = run(["prepay", "ledger", "--config", str(site), "--meter", "m1", "--last",
                         "-1"], capsys)
    assert status == 2
    usage_error(lines, "--last")


# -- keys --------------------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["afile", "afile/below"])
def test_keys_init_state_through_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        state: str) -> None:
    (tmp_path / "afile").write_text("")
    status, lines = run(["keys", "init", "--state", str(tmp_path / state)], capsys)
    assert status == 1
    one_line(lines, f"gateway keys init: {tmp_path / state}")


def test_keys_show_without_a_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = run(["keys", "show", "--state", str(tmp_path)], capsys)
    assert status == 1
    one_line(lines, "cannot read key file")


# -- wmbus -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "words"), [
    (["zz"], "telegram must be hex digits"),
    (["00"], "frame too short"),
    (["1e44", "--key", "zz"], "--key must be hex digits"),
    (["1e44", "--key", "0011"], "--key must be 32 hex digits"),
])
def test_wmbus_decode_bad_hex(capsys: pytest.CaptureFixture[str], args: list[str],
                              words: str) -> None:
    status, lines = run(["wmbus", "decode", *args], capsys)
    assert status == 1
    one_line(lines, words)


def test_wmbus_listen_missing_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = run(["wmbus", "listen", "--port", str(tmp_path / "ttyNONE"), "--key-file",
                         str(tmp_path / "k"), "--count", "1"], capsys)
    assert status == 1
    one_line(lines, "no such device")


def test_wmbus_listen_bad_count(capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = run(["wmbus", "listen", "--port", "/dev/null", "--count", "-1"], capsys)
    assert status == 2
    usage_error(lines, "--count")


def test_wmbus_keys_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = str(tmp_path / "wmbus.keys")
    status, lines = run(["wmbus", "keys", "--key-file", keys, "add", "12345678", "zz"], capsys)
    assert (status, lines) == (1, ["key for meter 12345678 must be 32 hex digits (AES-128)"])
    status, lines = run(["wmbus", "keys", "--key-file", keys, "add", "1234", GOOD_KEY], capsys)
    assert status == 1
    one_line(lines, "meter id must be 8 hex digits")
    status, lines = run(["wmbus", "keys", "--key-file", keys, "remove", "12345678"], capsys)
    assert (status, lines) == (1, ["no key for meter 12345678"])


def test_wmbus_keys_unusable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("")
    status, lines = run(["wmbus", "keys", "--key-file", str(tmp_path / "afile/keys"), "add",
                         "12345678", GOOD_KEY], capsys)
    assert status == 1
    one_line(lines, f"key file {tmp_path / 'afile/keys'}: cannot use it")
    binary = tmp_path / "binary.keys"
    binary.write_bytes(b"\xff\xfe\x00")
    binary.chmod(0o600)
    status, lines = run(["wmbus", "keys", "--key-file", str(binary), "list"], capsys)
    assert status == 1
    one_line(lines, "not a text file")


# -- iec62056 ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["absent.txt", "."])
def test_iec62056_parse_unreadable(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   name: str) -> None:
    status, lines = run(["iec62056", "parse", str(tmp_path / name)], capsys)
    assert status == 2
    one_line(lines, "cannot read")


@pytest.mark.parametrize(("args", "words"), [
    (["--max-baud", "1234"], "--max-baud"),
    (["--timeout", "-1"], "--timeout"),
    (["--timeout", "nan"], "--timeout"),
    (["--mode", "D"], "--mode"),
])
def test_iec62056_read_bad_options(capsys: pytest.CaptureFixture[str], args: list[str],
                                   words: str) -> None:
    status, lines = run(["iec62056", "read", "--port", "/dev/null", *args], capsys)
    assert status == 2
    usage_error(lines, words)


def test_iec62056_read_missing_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = run(["iec62056", "read", "--port", str(tmp_path / "ttyNONE")], capsys)
    assert status == 2
    one_line(lines, "no such device")


# -- demo --------------------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["afile", "afile/below"])
def test_demo_state_through_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   state: str) -> None:
    (tmp_path / "afile").write_text("")
    status, lines = run(["demo", "--state", str(tmp_path / state), "--for", "1"], capsys)
    assert status == 2
    one_line(lines, "gateway demo: --state:")


@pytest.mark.parametrize(("args", "words"), [
    (["--poll", "0"], "--poll"),
    (["--for", "-1"], "--for"),
    (["--broker", "http://broker"], "expected mqtt://host"),
])
def test_demo_bad_options(capsys: pytest.CaptureFixture[str], args: list[str],
                          words: str) -> None:
    status, lines = run(["demo", *args], capsys)
    assert status == 2
    usage_error(lines, words)
