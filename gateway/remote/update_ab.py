"""A/B install of an update bundle (docs/update.md): each version in a venv of its own under
`<prefix>/versions/<version>/`, `current` and `previous` symlinks switched atomically (a new
link renamed over the old one), the running version never touched.

    <prefix>/versions/0.1.0/      the venv of 0.1.0 (bin/gateway, bin/python, ...)
    <prefix>/versions/0.2.0/
    <prefix>/current  -> versions/0.2.0     what the unit's ExecStart runs
    <prefix>/previous -> versions/0.1.0     where a rollback goes
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

from core.errors import MeterGatewayError
from uplink.release import PACKAGE, Manifest, check_wheels, parse_version

LOGGER = logging.getLogger(__name__)
INSTALL_TIMEOUT_S: Final = 900.0  # a Pi 3 on a slow card, a few dozen wheels
INSTALLED: Final = ".installed"  # written last: the venv is complete
KEEP_VERSIONS: Final = 3  # current, previous and one more; older ones are removed


class InstallError(MeterGatewayError):
    """The new version could not be installed; the running one is untouched. `reason` is the
    refusal code of the update result."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


def versions_dir(prefix: Path) -> Path:
    return prefix / "versions"


def linked_version(prefix: Path, name: str = "current") -> str | None:
    """The version a symlink (`current`, `previous`) points at; None when there is none."""
    try:
        return Path(os.readlink(prefix / name)).name
    except OSError:
        return None


def install_version(prefix: Path, bundle: Path, manifest: Manifest,
                    python: str = sys.executable) -> Path:
    """The bundle's wheels into a new venv `versions/<version>/`, offline; its path.

    A venv cannot be moved (its scripts name its path), so it is built in place and marked
    complete (`.installed`, written last); a directory without the mark is removed and built
    again. A complete one is reused (a resumed update)."""
    check_wheels(manifest, bundle)
    target = versions_dir(prefix) / manifest.version
    if (target / INSTALLED).exists():
        return target
    if manifest.version == linked_version(prefix):
        raise InstallError("unchanged", f"{manifest.version} is running")
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        _run([python, "-m", "venv", "--without-pip", str(target)], "venv")
        _run([python, "-m", "pip", "--python", str(target / "bin" / "python"), "install",
              "--no-index", "--find-links", str(bundle), "--no-cache-dir",
              "--disable-pip-version-check", "--quiet", f"{PACKAGE}=={manifest.version}"],
             "pip install")
        if not (target / "bin" / "gateway").exists():
            raise InstallError("install_failed", f"{manifest.version}: no bin/gateway")
    except InstallError:
        shutil.rmtree(target, ignore_errors=True)
        raise
    (target / INSTALLED).write_text(json.dumps({"version": manifest.version,
                                                "min_version": manifest.min_version}),
                                    encoding="utf-8")
    LOGGER.warning("update_installed", extra={"version": manifest.version, "path": str(target)})
    return target


def installed_min_version(prefix: Path, version: str) -> str | None:
    """The `min_version` of the bundle `version` came from: no update may go below it."""
    try:
        mark = json.loads((versions_dir(prefix) / version / INSTALLED).read_text("utf-8"))
    except (OSError, ValueError):
        return None  # installed by make install, not from a bundle: no floor
    floor = mark.get("min_version") if isinstance(mark, dict) else None
    return floor if isinstance(floor, str) else None


def _run(argv: list[str], what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError("install_failed", f"{what}: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise InstallError("install_failed", f"{what} exit {done.returncode}: {' | '.join(tail)}")


def relink(prefix: Path, name: str, version: str) -> None:
    """`<prefix>/<name>` -> versions/<version>, replaced in one rename (never absent)."""
    if not (versions_dir(prefix) / version).is_dir():
        raise InstallError("not_installed", f"{versions_dir(prefix) / version} does not exist")
    tmp = prefix / f".{name}.new"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(Path("versions") / version)
    os.replace(tmp, prefix / name)
    _fsync_dir(prefix)


def switch_to(prefix: Path, version: str) -> str | None:
    """`current` to `version`, `previous` to what ran; returns the version that ran."""
    running = linked_version(prefix)
    if running is not None and running != version:
        relink(prefix, "previous", running)
    relink(prefix, "current", version)
    LOGGER.warning("update_switched", extra={"version": version, "previous": running})
    return running


def prune(prefix: Path, keep: int = KEEP_VERSIONS) -> list[str]:
    """Remove the oldest versions beyond `keep`, never `current` or `previous`."""
    linked = {linked_version(prefix), linked_version(prefix, "previous")}
    found = sorted((p for p in versions_dir(prefix).iterdir()
                    if p.is_dir() and not p.name.startswith(".")),
                   key=lambda p: parse_version(p.name))
    removed = []
    for path in found[:max(0, len(found) - keep)]:
        if path.name not in linked:
            shutil.rmtree(path)
            removed.append(path.name)
    return removed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_RESTART_INTO: list[Path] = []


def restart_into(prefix: Path) -> None:
    """The next clean restart (gateway/cli/cmd_service.py) execs `<prefix>/current/bin/python`
    rather than this interpreter: the version `current` now names."""
    _RESTART_INTO[:] = [prefix / "current" / "bin" / "python"]


def restart_interpreter() -> Path | None:
    return _RESTART_INTO[0] if _RESTART_INTO else None
