"""Tiny wheels made on the spot (no network, no build backend): a `meter_gateway` stand-in whose
console script `gateway` prints its version, or exits 3 at start when built with `crash=True`."""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from uplink.release import MANIFEST_FILE, build_manifest, sign_manifest


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(directory: Path, version: str, *, crash: bool = False,
               dist: str = "meter_gateway", pth: str | None = None,
               padding: int = 0) -> Path:
    """A pure-Python wheel `dist-version-py3-none-any.whl` in `directory`; `pth`: the text of a
    `<dist>.pth` it installs (a path the venv then imports from, or an `import` line run at
    every start of its python); `padding`: that many random bytes in a data file (a bundle
    that takes a while to download)."""
    info = f"{dist}-{version}.dist-info"
    body = (f"import sys\nVERSION = {version!r}\n\n\ndef main() -> int:\n"
            + ("    sys.stderr.write('crash at start\\n')\n    return 3\n" if crash else
               "    sys.stdout.write(VERSION + '\\n')\n    return 0\n"))
    files = {
        f"{dist}_probe/__init__.py": body.encode(),
        f"{info}/METADATA": (f"Metadata-Version: 2.1\nName: {dist.replace('_', '-')}\n"
                             f"Version: {version}\n").encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                         b"Tag: py3-none-any\n",
        f"{info}/entry_points.txt": f"[console_scripts]\ngateway = {dist}_probe:main\n".encode(),
    }
    if padding:
        files[f"{dist}_probe/padding.bin"] = os.urandom(padding)
    if pth is not None:
        files[f"{dist}_probe.pth"] = (pth + "\n").encode()
    lines = [_record_line(name, data) for name, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(lines) + "\n").encode()
    path = directory / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def make_bundle(directory: Path, version: str, key: Ed25519PrivateKey, *,
                min_version: str = "0", crash: bool = False, pth: str | None = None,
                padding: int = 0) -> Path:
    """A signed bundle directory: the stand-in wheel and manifest.cose."""
    directory.mkdir(parents=True, exist_ok=True)
    make_wheel(directory, version, crash=crash, pth=pth, padding=padding)
    manifest = build_manifest(directory, version, min_version, now_ms=1_700_000_000_000)
    (directory / MANIFEST_FILE).write_bytes(sign_manifest(manifest, key))
    return directory


def install_test_version(prefix: Path, bundles: Path, version: str, *, crash: bool = False,
                         key: Ed25519PrivateKey | None = None) -> None:
    """`version` built as a signed bundle of tiny wheels and installed under `prefix` as a real
    venv (gateway.remote.update_ab.install_version), as an accepted update would be."""
    from gateway.remote.update_ab import install_version
    from uplink.release import verify_manifest

    key = key or Ed25519PrivateKey.generate()
    bundle = make_bundle(bundles / version, version, key, crash=crash)
    manifest = verify_manifest((bundle / MANIFEST_FILE).read_bytes(), key.public_key())
    install_version(prefix, bundle, manifest)
