"""Accounts: scrypt hashes, the [console] section checks, and editing the TOML in place."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.console.accounts import (
    AccountError,
    atomic_write,
    hash_password,
    load_settings,
    parse_console_section,
    set_account,
    verify_password,
)
from gateway.console.api import Role

CONFIG = """\
# Site: Market street 4 (comment must survive)
[gateway]
id = "gw-7"

[console]
socket = "/run/gateway/control.sock"
idle_logout_s = 300

[[console.account]]
name = "old"
role = "viewer"
password_hash = "scrypt$16384$8$1$AAAA$BBBB"

[uplink]
host = "mqtt.example.net"   # trailing comment
"""


def test_hash_and_verify() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$")
    assert verify_password("correct horse", stored)
    assert not verify_password("correct hors", stored)
    assert hash_password("same") != hash_password("same")  # salted


@pytest.mark.parametrize("bad", ["", "scrypt$", "md5$1$2$3$4$5", "scrypt$x$8$1$AA$BB",
                                 "scrypt$16384$8$1$!!$BB", "scrypt$3$8$1$AAAA$BBBB"])
def test_malformed_hash_never_matches(bad: str) -> None:
    assert not verify_password("anything", bad)


def test_section_errors_name_every_key() -> None:
    with pytest.raises(AccountError) as info:
        parse_console_section({"idle_logout_s": -1, "colour": "red",
                               "account": [{"name": "ana", "role": "boss", "password_hash": "x"}]})
    message = str(info.value)
    assert "console.idle_logout_s" in message and "console.colour: unknown key" in message
    assert "console.account[0].role" in message


def test_set_account_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(CONFIG)
    set_account(path, "ana", Role.TECHNICIAN, "secret-pass")
    set_account(path, "old", Role.ADMIN, "other-pass")
    text = path.read_text()
    assert "# Site: Market street 4 (comment must survive)" in text
    assert 'host = "mqtt.example.net"   # trailing comment' in text
    settings_ = load_settings(path)
    assert settings_.idle_logout_s == 300
    assert {a.name: a.role for a in settings_.accounts.values()} == {
        "ana": Role.TECHNICIAN, "old": Role.ADMIN}
    assert verify_password("other-pass", settings_.accounts["old"].password_hash)
    data = tomllib.loads(text)
    assert data["uplink"] == {"host": "mqtt.example.net"}
    assert [p.name for p in tmp_path.iterdir()] == ["gateway.toml"]  # no temp file left


def test_set_account_refuses_bad_toml_and_bad_names(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text("[console\n")
    with pytest.raises(AccountError, match="not valid TOML"):
        set_account(path, "ana", Role.VIEWER, "secret-pass")
    with pytest.raises(AccountError, match="account name"):
        set_account(tmp_path / "new.toml", "Bad Name", Role.VIEWER, "secret-pass")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.from_regex(r"[a-z][a-z0-9_.-]{0,10}", fullmatch=True), min_size=1,
                max_size=4, unique=True))
def test_accounts_round_trip(tmp_path_factory: pytest.TempPathFactory, names: list[str]) -> None:
    path = tmp_path_factory.mktemp("cfg") / "gateway.toml"
    path.write_text(CONFIG)
    from gateway.console import accounts

    text = path.read_text()
    wanted = [accounts.Account(n, Role.VIEWER, f"scrypt$1$1$1$AA$B{i}") for i, n in
              enumerate(names)]
    accounts.write_accounts(path, text, wanted)
    got = load_settings(path).accounts
    assert sorted(got) == sorted(names)
    assert all(got[a.name] == a for a in wanted)


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_root_writing_the_config_keeps_its_owner(tmp_path: Path) -> None:
    # `sudo gateway console passwd` must leave the config readable and writable by the service
    config = tmp_path / "gateway.toml"
    config.write_text("gateway_id = 'gw'\n")
    os.chown(config, 65534, 65534)
    config.chmod(0o640)
    atomic_write(config, "gateway_id = 'gw2'\n")
    info = config.stat()
    assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (65534, 65534, 0o640)


@pytest.mark.skipif(os.geteuid() != 0, reason="checks as user nobody, needs root")
def test_config_behind_a_closed_directory_is_one_clear_error(tmp_path: Path) -> None:
    # An SSH user outside group gateway: Path.exists() raises PermissionError on Python 3.11
    closed = tmp_path / "etc-gateway"
    closed.mkdir(mode=0o750)
    (closed / "gateway.toml").write_text("gateway_id = 'gw'\n")
    tmp_path.chmod(0o755)
    os.seteuid(65534)  # nobody, for this check only
    try:
        with pytest.raises(AccountError, match="cannot read"):
            load_settings(closed / "gateway.toml")
    finally:
        os.seteuid(0)
