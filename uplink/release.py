"""The update bundle (docs/update.md): a COSE_Sign1 manifest signed by the release key (never the
command key) and the wheels it names, each with its size and SHA-256.

Shared by the head-end, which builds and signs it (`gateway-headend release publish`), and the
gateway, which verifies it before a byte of a wheel is used (gateway/remote/update_*.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from uplink.cose import loads_strict, parse_sign1, sign1, verify_sign1
from uplink.errors import BadMessage, BadSignature

FORMAT: Final = 1
MANIFEST_FILE: Final = "manifest.cose"
PACKAGE: Final = "meter-gateway"
MAX_MANIFEST_BYTES: Final = 64 * 1024
MAX_WHEELS: Final = 200
_VERSION = re.compile(r"^(0|[1-9][0-9]{0,5})(\.(0|[1-9][0-9]{0,5})){0,3}$")
_SHA = re.compile(r"^[0-9a-f]{64}$")
_WHEEL = re.compile(r"^[A-Za-z0-9_.+!-]{1,180}\.whl$")
_CHUNK = 1 << 20


class BundleError(BadMessage):
    """A manifest or bundle that is not what the format says; `reason` is the refusal code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


def parse_version(text: str) -> tuple[int, ...]:
    """`1.2.3` -> (1, 2, 3); digits and dots only (no pre-releases: a panel runs releases)."""
    if not isinstance(text, str) or _VERSION.match(text) is None:
        raise BundleError("bad_manifest", f"version {text!r} is not N[.N[.N[.N]]]")
    parts = tuple(int(p) for p in text.split("."))
    return parts + (0,) * (4 - len(parts))


@dataclass(frozen=True, slots=True)
class Wheel:
    file: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    version: str
    min_version: str  # the oldest running version this bundle may replace
    created_ms: int
    wheels: tuple[Wheel, ...]
    package: str = PACKAGE
    format: int = FORMAT

    @property
    def total_size(self) -> int:
        return sum(w.size for w in self.wheels)

    def to_cbor(self) -> bytes:
        return cbor2.dumps({"format": self.format, "package": self.package,
                            "version": self.version, "min_version": self.min_version,
                            "created_ms": self.created_ms,
                            "wheels": [{"file": w.file, "size": w.size, "sha256": w.sha256}
                                       for w in self.wheels]})


def release_kid(key: Ed25519PublicKey) -> bytes:
    """The first 8 bytes of the SHA-256 of the raw public key: which release key signed."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:8]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def build_manifest(wheel_dir: Path, version: str, min_version: str,
                   now_ms: int | None = None) -> Manifest:
    """The manifest of every *.whl in `wheel_dir` (sorted by name)."""
    parse_version(version)
    if parse_version(min_version) > parse_version(version):
        raise BundleError("bad_manifest", f"min_version {min_version} is above {version}")
    wheels = tuple(Wheel(p.name, p.stat().st_size, sha256_file(p))
                   for p in sorted(wheel_dir.glob("*.whl")))
    if not any(w.file.split("-")[0].replace("_", "-").lower() == PACKAGE for w in wheels):
        raise BundleError("bad_manifest", f"{wheel_dir}: no {PACKAGE} wheel")
    created = int(time.time() * 1000) if now_ms is None else now_ms
    return Manifest(version, min_version, created, wheels)


def sign_manifest(manifest: Manifest, key: Ed25519PrivateKey) -> bytes:
    return sign1(manifest.to_cbor(), key, release_kid(key.public_key()))


def verify_manifest(data: bytes, release_key: Ed25519PublicKey) -> Manifest:
    """The manifest when signed by `release_key` and well formed; BundleError with its reason."""
    try:
        msg = parse_sign1(data, max_bytes=MAX_MANIFEST_BYTES)
        payload = verify_sign1(msg, release_key)
    except BadSignature as exc:
        raise BundleError("bad_signature", str(exc)) from None
    except BadMessage as exc:
        raise BundleError("bad_signature", f"not a signed manifest ({exc})") from None
    try:
        obj = loads_strict(payload, "manifest")
    except BadMessage as exc:
        raise BundleError("bad_manifest", str(exc)) from None
    return _manifest_of(obj)


def _manifest_of(obj: Any) -> Manifest:
    if not isinstance(obj, Mapping) or obj.get("format") != FORMAT:
        raise BundleError("bad_manifest", f"not a format {FORMAT} manifest")
    if obj.get("package") != PACKAGE:
        raise BundleError("bad_manifest", f"package {obj.get('package')!r} is not {PACKAGE}")
    version, minimum, created = obj.get("version"), obj.get("min_version"), obj.get("created_ms")
    if not isinstance(version, str) or not isinstance(minimum, str):
        raise BundleError("bad_manifest", "version and min_version must be text")
    parse_version(version)
    parse_version(minimum)
    if not isinstance(created, int) or created < 0:
        raise BundleError("bad_manifest", "created_ms is not a non-negative integer")
    raw = obj.get("wheels")
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_WHEELS:
        raise BundleError("bad_manifest", f"wheels must be a list of 1 .. {MAX_WHEELS}")
    wheels = tuple(_wheel_of(w) for w in raw)
    if len({w.file for w in wheels}) != len(wheels):
        raise BundleError("bad_manifest", "a wheel is named twice")
    return Manifest(version, minimum, created, wheels)


def _wheel_of(obj: Any) -> Wheel:
    if not isinstance(obj, Mapping):
        raise BundleError("bad_manifest", "a wheel entry is not a map")
    name, size, sha = obj.get("file"), obj.get("size"), obj.get("sha256")
    if not isinstance(name, str) or _WHEEL.match(name) is None or name.startswith("."):
        raise BundleError("bad_manifest", f"wheel file name {name!r} is not a plain *.whl name")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise BundleError("bad_manifest", f"{name}: size must be a positive integer")
    if not isinstance(sha, str) or _SHA.match(sha) is None:
        raise BundleError("bad_manifest", f"{name}: sha256 must be 64 lower-case hex digits")
    return Wheel(name, size, sha)


def check_wheels(manifest: Manifest, directory: Path) -> None:
    """Every wheel of the manifest in `directory`, whole and with its hash; BundleError if not."""
    for wheel in manifest.wheels:
        path = directory / wheel.file
        size = path.stat().st_size if path.exists() else -1
        if size < wheel.size:
            raise BundleError("truncated", f"{wheel.file}: {max(size, 0)} of {wheel.size} bytes")
        if size > wheel.size or sha256_file(path) != wheel.sha256:
            raise BundleError("wrong_hash", f"{wheel.file}: does not hash to {wheel.sha256}")


def check_replaces(manifest: Manifest, running: str, floor: str | None) -> None:
    """Refuse a bundle that may not replace `running`, or that goes below `floor`."""
    new = parse_version(manifest.version)
    if parse_version(running) < parse_version(manifest.min_version):
        raise BundleError("too_old_to_update", f"{manifest.version} replaces "
                          f"{manifest.min_version} or later, this gateway runs {running}")
    if floor is not None and new < parse_version(floor):
        raise BundleError("downgrade_refused", f"{manifest.version} is below the minimum {floor}")
    if new == parse_version(running):
        raise BundleError("unchanged", f"{running} is running already")


def atomic_bytes(path: Path, data: bytes) -> None:
    """`data` at `path` through a temp file, fsync and rename (a reader never sees half)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
