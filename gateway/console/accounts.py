"""Console accounts: scrypt password hashes, the `[console]` settings, login lockout.

Accounts live in the config file as `[[console.account]]` tables (name, role, password_hash).
`write_accounts()` rewrites just those tables in the TOML text and leaves every other line of
the file as it was (comments included), then replaces the file atomically.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import MeterGatewayError
from gateway.console.api import Role

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # ~16 MiB, ~50 ms on a CM4: slow for guessers
SALT_BYTES = 16
HASH_BYTES = 32
NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
DEFAULT_SOCKET = "/run/gateway/control.sock"
DEFAULT_BAUDRATE = 115200
DEFAULT_IDLE_LOGOUT_S = 600  # an unattended logged-in panel console is a risk
DEFAULT_LOCKOUT_AFTER = 3  # failed logins allowed before waiting starts
DEFAULT_LOCKOUT_BASE_S = 5.0  # first wait; doubles with each further failure
DEFAULT_LOCKOUT_MAX_S = 300.0  # cap so a technician is never locked out for hours


class AccountError(MeterGatewayError, ValueError):
    """Bad `[console]` settings or account data; the message names the key."""


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    role: Role
    password_hash: str


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    socket: str = DEFAULT_SOCKET
    port: str | None = None
    baudrate: int = DEFAULT_BAUDRATE
    idle_logout_s: float = DEFAULT_IDLE_LOGOUT_S
    lockout_after: int = DEFAULT_LOCKOUT_AFTER
    lockout_base_s: float = DEFAULT_LOCKOUT_BASE_S
    lockout_max_s: float = DEFAULT_LOCKOUT_MAX_S
    accounts: dict[str, Account] = field(default_factory=dict)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """Return "scrypt$N$r$p$salt$hash" (base64) for storing in the config."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True when `password` matches `stored`; a malformed stored hash never matches."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = _scrypt(password, base64.b64decode(salt, validate=True), int(n), int(r), int(p))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=HASH_BYTES, maxmem=64 * 1024 * 1024
    )


_NUMBER_KEYS = {
    "baudrate": int,
    "idle_logout_s": float,
    "lockout_after": int,
    "lockout_base_s": float,
    "lockout_max_s": float,
}


def parse_console_section(section: dict[str, Any], *, where: str = "config") -> ConsoleSettings:
    """Validate the `[console]` table; every problem is reported with its key."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, value in section.items():
        if key in _NUMBER_KEYS:
            kind = _NUMBER_KEYS[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                problems.append(f"console.{key}: must be a positive number, got {value!r}")
            else:
                values[key] = kind(value)
        elif key in ("socket", "port"):
            if not isinstance(value, str) or not value:
                problems.append(f"console.{key}: must be a non-empty string")
            else:
                values[key] = value
        elif key == "account":
            values["accounts"] = _parse_accounts(value, problems)
        else:
            problems.append(f"console.{key}: unknown key")
    if problems:
        raise AccountError(f"{where}: " + "; ".join(problems))
    return ConsoleSettings(**values)


def _parse_accounts(tables: Any, problems: list[str]) -> dict[str, Account]:
    accounts: dict[str, Account] = {}
    if not isinstance(tables, list):
        problems.append("console.account: must be an array of tables [[console.account]]")
        return accounts
    for index, table in enumerate(tables):
        where = f"console.account[{index}]"
        if not isinstance(table, dict) or set(table) != {"name", "role", "password_hash"}:
            problems.append(f"{where}: needs exactly the keys name, role, password_hash")
            continue
        name, role, pw_hash = table["name"], table["role"], table["password_hash"]
        if not isinstance(name, str) or not NAME_RE.match(name):
            problems.append(f"{where}.name: {name!r} is not a valid account name")
            continue
        if name in accounts:
            problems.append(f"{where}.name: account {name!r} is defined twice")
        try:
            parsed_role = Role.parse(str(role))
        except ValueError as exc:
            problems.append(f"{where}.role: {exc}")
            continue
        if not isinstance(pw_hash, str) or not pw_hash.startswith("scrypt$"):
            problems.append(f"{where}.password_hash: not a scrypt hash; set it with"
                            " 'gateway console passwd'")
            continue
        accounts[name] = Account(name, parsed_role, pw_hash)
    return accounts


# -- editing the config file ---------------------------------------------------------------

_TABLE_HEADER = re.compile(r"^\s*\[")
_ACCOUNT_HEADER = re.compile(r"^\s*\[\[\s*console\s*\.\s*account\s*\]\]\s*(#.*)?$")


def set_account(path: Path, name: str, role: Role, password: str) -> None:
    """Add or replace one account in the TOML file at `path`, atomically."""
    if not NAME_RE.match(name):
        raise AccountError(f"{path}: account name {name!r} must match {NAME_RE.pattern}")
    text = _read_text(path)
    settings = _settings_of(text, path)
    accounts = dict(settings.accounts)
    accounts[name] = Account(name, role, hash_password(password))
    write_accounts(path, text, list(accounts.values()))


def write_accounts(path: Path, text: str, accounts: list[Account]) -> None:
    """Replace every `[[console.account]]` table of `text` by `accounts`; write atomically."""
    kept: list[str] = []
    in_account = False
    for line in text.splitlines():
        if _ACCOUNT_HEADER.match(line):
            in_account = True
            continue
        if in_account and _TABLE_HEADER.match(line):
            in_account = False
        if not in_account:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    blocks = [
        f'\n[[console.account]]\nname = "{a.name}"\nrole = "{a.role.name.lower()}"\n'
        f'password_hash = "{a.password_hash}"'
        for a in sorted(accounts, key=lambda a: a.name)
    ]
    new_text = "\n".join(kept) + "\n" + "\n".join(blocks) + "\n"
    _check_same_except_accounts(text, new_text, path)
    atomic_write(path, new_text)


def _check_same_except_accounts(old: str, new: str, path: Path) -> None:
    """Refuse to write if the edit changed anything but the accounts (a TOML we misread)."""
    before, after = tomllib.loads(old), tomllib.loads(new)
    before.get("console", {}).pop("account", None)
    after.get("console", {}).pop("account", None)
    if not after.get("console"):
        after.pop("console", None)
    if not before.get("console"):
        before.pop("console", None)
    if before != after:
        raise AccountError(
            f"{path}: cannot edit accounts without changing other keys; edit the file by hand"
        )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise AccountError(f"{path}: cannot read ({exc})") from exc


def _settings_of(text: str, path: Path) -> ConsoleSettings:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AccountError(f"{path}: not valid TOML ({exc}); fix the file first") from exc
    return parse_console_section(data.get("console", {}), where=str(path))


def load_settings(path: Path) -> ConsoleSettings:
    """Read the `[console]` section of a config file."""
    try:
        found = path.exists()
    except PermissionError:  # Python 3.11: exists() raises when a parent directory is closed
        found = True  # reading it below names the problem
    if not found:
        raise AccountError(f"{path}: config file not found; pass --config FILE")
    return _settings_of(_read_text(path), path)


def atomic_write(path: Path, text: str) -> None:
    """Write via a temp file, fsync, rename, fsync the directory: survives a power cut."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    old = path.stat() if path.exists() else None
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                 old.st_mode & 0o777 if old else 0o600)
    try:
        if old is not None and os.geteuid() == 0:
            # root (`sudo gateway console passwd`) must not leave a root-owned config the
            # service user can no longer read or save
            os.fchown(fd, old.st_uid, old.st_gid)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class LoginGuard:
    """Counts failed logins per line; after `after` failures each try must wait longer.

    Shared by all sessions on one line (or the whole control socket) so hanging up and
    reconnecting does not reset the count. The clock is injected for tests.
    """

    def __init__(self, settings: ConsoleSettings, clock: Any) -> None:
        self._settings = settings
        self._clock = clock
        self._failures = 0
        self._locked_until = 0.0

    def wait_s(self) -> float:
        """Seconds until the next attempt is allowed (0 when allowed now)."""
        return max(0.0, self._locked_until - self._clock())

    def check(self, accounts: dict[str, Account], name: str, password: str) -> Account | None:
        """The account when the password matches, else None (and the failure counts)."""
        account = accounts.get(name)
        # Hash even for unknown names so timing does not tell which names exist.
        stored = account.password_hash if account else _DUMMY_HASH
        ok = verify_password(password, stored) and account is not None
        if ok:
            self._failures = 0
            return account
        self._failures += 1
        extra = self._failures - self._settings.lockout_after
        if extra >= 0:
            delay = self._settings.lockout_base_s * 2**extra
            self._locked_until = self._clock() + min(delay, self._settings.lockout_max_s)
        return None

    @property
    def failures(self) -> int:
        return self._failures


_DUMMY_HASH = hash_password("not-a-password", salt=b"\0" * SALT_BYTES)
