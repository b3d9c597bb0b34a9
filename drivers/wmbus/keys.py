"""Per-meter AES keys in a private key file (mode 0600); keys are never logged or shown."""

from __future__ import annotations

import logging
import os
import re
import stat
import tempfile
from pathlib import Path

from drivers.errors import DriverError

LOGGER = logging.getLogger(__name__)
_ID = re.compile(r"^[0-9A-Fa-f]{8}$")
_KEY = re.compile(r"^[0-9A-Fa-f]{32}$")
FILE_MODE = 0o600


class MeterKeyFileError(DriverError):
    """The meters' AES key file is unsafe (readable by others) or malformed."""


def normalize_meter_id(meter_id: str) -> str:
    if not _ID.match(meter_id):
        raise MeterKeyFileError(f"meter id must be 8 hex digits, got {meter_id!r}")
    return meter_id.upper()


class KeyStore:
    """Keys by meter id, loaded from `path` (one `METERID HEXKEY` per line, `#` comments)."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._keys: dict[str, bytes] = {}
        if self._path.exists():
            self._load()

    def __repr__(self) -> str:
        return f"KeyStore(path={str(self._path)!r}, meters={len(self._keys)})"

    def __contains__(self, meter_id: object) -> bool:
        return isinstance(meter_id, str) and meter_id.upper() in self._keys

    def get(self, meter_id: str) -> bytes | None:
        return self._keys.get(meter_id.upper())

    def ids(self) -> list[str]:
        return sorted(self._keys)

    def add(self, meter_id: str, key_hex: str) -> None:
        """Add or replace a key and rewrite the file atomically with mode 0600."""
        if not _KEY.match(key_hex):
            raise MeterKeyFileError(f"key for meter {meter_id} must be 32 hex digits (AES-128)")
        self._keys[normalize_meter_id(meter_id)] = bytes.fromhex(key_hex)
        self._save()
        LOGGER.info("wmbus_key_added", extra={"meter": meter_id.upper()})

    def remove(self, meter_id: str) -> bool:
        removed = self._keys.pop(normalize_meter_id(meter_id), None) is not None
        if removed:
            self._save()
            LOGGER.info("wmbus_key_removed", extra={"meter": meter_id.upper()})
        return removed

    def _load(self) -> None:
        mode = self._path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise MeterKeyFileError(
                f"key file {self._path} is accessible by group/others (mode {mode & 0o777:o}); "
                f"run: chmod 600 {self._path}")
        for number, line in enumerate(self._path.read_text().splitlines(), start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            parts = text.split()
            if len(parts) != 2 or not _ID.match(parts[0]) or not _KEY.match(parts[1]):
                # The line is not echoed: it may hold a key.
                raise MeterKeyFileError(
                    f"{self._path}:{number}: expected 'METERID(8 hex) KEY(32 hex)'")
            self._keys[parts[0].upper()] = bytes.fromhex(parts[1])

    def _save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{meter} {key.hex().upper()}\n" for meter, key in sorted(self._keys.items())]
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".wmbus-keys-")
        try:
            os.fchmod(fd, FILE_MODE)
            with os.fdopen(fd, "w") as handle:
                handle.write("# wireless M-Bus keys: meter id, AES-128 key\n")
                handle.writelines(lines)
            os.replace(tmp, self._path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
