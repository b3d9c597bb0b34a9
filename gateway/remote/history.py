"""The config versions the gateway ran or was sent: one file per version under the data
directory (`config_history/NNNNNN-<sha256>.toml`), the newest `keep` of them."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from gateway.console.accounts import atomic_write

HISTORY_DIR = "config_history"
_NAME = re.compile(r"^(?P<number>\d{6})-(?P<sha>[0-9a-f]{64})\.toml$")


def sha256_text(text: str) -> str:
    """The hash a push names: SHA-256 of the file's UTF-8 bytes, lower-case hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ConfigVersion:
    number: int
    sha256: str
    path: Path


class ConfigHistory:
    def __init__(self, directory: Path, keep: int) -> None:
        self.directory = directory
        self.keep = keep

    def versions(self) -> list[ConfigVersion]:
        """Every kept version, oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            if (match := _NAME.match(path.name)) is not None:
                found.append(ConfigVersion(int(match["number"]), match["sha"], path))
        return sorted(found, key=lambda v: v.number)

    def find(self, sha256: str) -> ConfigVersion | None:
        """The newest version with this hash, or None."""
        return next((v for v in reversed(self.versions()) if v.sha256 == sha256), None)

    def add(self, text: str) -> ConfigVersion:
        """Keep `text` as the next version (the newest again when it is the newest already)."""
        sha = sha256_text(text)
        versions = self.versions()
        if versions and versions[-1].sha256 == sha:
            return versions[-1]
        number = versions[-1].number + 1 if versions else 1
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{number:06d}-{sha}.toml"
        atomic_write(path, text)
        for old in [*versions, ConfigVersion(number, sha, path)][:-self.keep]:
            old.path.unlink(missing_ok=True)
        return ConfigVersion(number, sha, path)
