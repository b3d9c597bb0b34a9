"""DLMS meter secrets in a private key file (mode 0600), like the wireless M-Bus keys: the
suite-0 encryption key (global unicast), the authentication key and the LLS password, by key
id. One `KEY_ID KIND VALUE` per line, `#` comments; KIND is `encryption` or `authentication`
(32 hex digits) or `password` (text without blanks). Secrets are never logged or shown: errors
name the line, never its content.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from drivers.dlms.security import Keys
from drivers.errors import DriverError

LOGGER = logging.getLogger(__name__)
_ID: Final = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_KEY: Final = re.compile(r"^[0-9A-Fa-f]{32}$")
_PASSWORD: Final = re.compile(r"^\S{1,64}$")
KINDS: Final = ("encryption", "authentication", "password")
FILE_MODE: Final = 0o600


class DlmsKeyFileError(DriverError):
    """The DLMS key file is unsafe (readable by others) or malformed."""


@dataclass(frozen=True)
class Secrets:
    encryption: bytes | None = field(default=None, repr=False)
    authentication: bytes | None = field(default=None, repr=False)
    password: bytes | None = field(default=None, repr=False)

    def keys(self) -> Keys | None:
        if self.encryption is None:
            return None
        return Keys(self.encryption, self.authentication or b"")


class DlmsKeyFile:
    """Secrets by key id, loaded from `path` (absent: none yet)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._values: dict[str, dict[str, str]] = {}
        if self.path.exists():
            self._load()

    def __repr__(self) -> str:
        return f"DlmsKeyFile(path={str(self.path)!r}, ids={len(self._values)})"

    def ids(self) -> list[str]:
        return sorted(self._values)

    def secrets(self, key_id: str) -> Secrets:
        values = self._values.get(key_id, {})
        enc, auth = values.get("encryption"), values.get("authentication")
        password = values.get("password")
        return Secrets(None if enc is None else bytes.fromhex(enc),
                       None if auth is None else bytes.fromhex(auth),
                       None if password is None else password.encode())

    def add(self, key_id: str, kind: str, value: str) -> None:
        """Add or replace one secret and rewrite the file atomically with mode 0600."""
        _check(key_id, kind, value, where="the new secret")
        self._values.setdefault(key_id, {})[kind] = value
        self._save()
        LOGGER.info("dlms_key_added", extra={"key_id": key_id, "kind": kind})

    def remove(self, key_id: str) -> bool:
        removed = self._values.pop(key_id, None) is not None
        if removed:
            self._save()
            LOGGER.info("dlms_key_removed", extra={"key_id": key_id})
        return removed

    def _load(self) -> None:
        mode = self.path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise DlmsKeyFileError(
                f"key file {self.path} is accessible by group/others (mode {mode & 0o777:o}); "
                f"run: chmod 600 {self.path}")
        for number, line in enumerate(self.path.read_text().splitlines(), start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            parts = text.split()
            if len(parts) != 3:
                raise DlmsKeyFileError(f"{self.path}:{number}: expected 'KEY_ID KIND VALUE'")
            _check(*parts, where=f"{self.path}:{number}")
            self._values.setdefault(parts[0], {})[parts[1]] = parts[2]

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{key_id} {kind} {value}\n" for key_id, kinds in sorted(self._values.items())
                 for kind, value in sorted(kinds.items())]
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".dlms-keys-")
        try:
            os.fchmod(fd, FILE_MODE)
            with os.fdopen(fd, "w") as handle:
                handle.write("# DLMS keys: key id, kind (encryption|authentication|password), "
                             "value\n")
                handle.writelines(lines)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _check(key_id: str, kind: str, value: str, *, where: str) -> None:
    """The line is never echoed: it may hold a key."""
    if not _ID.match(key_id):
        raise DlmsKeyFileError(f"{where}: the key id is 1..64 letters, digits or _.:-")
    if kind not in KINDS:
        raise DlmsKeyFileError(f"{where}: kind must be one of {', '.join(KINDS)}")
    pattern = _PASSWORD if kind == "password" else _KEY
    if not pattern.match(value):
        raise DlmsKeyFileError(f"{where}: a {kind} is " + (
            "1..64 characters without blanks" if kind == "password" else "32 hex digits"))
