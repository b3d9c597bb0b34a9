"""The download of an update bundle in chunks (docs/update.md), resumable after a link loss.

Each file of the bundle (manifest.cose first, then every wheel it names) is fetched into
`<dir>/<file>.part` one chunk after another; a chunk is appended and fsynced before the next
is asked for, so the size of the `.part` file is the offset received (kept across a link loss
and a restart). A whole file is checked against the signed manifest (size and SHA-256) and only
then renamed to its name. The manifest is verified with the release key before any wheel is
fetched, and its total size is bounded (`too_large`). The rate is bounded by a pause between
chunks. The transport is a callable (MQTT in gateway/remote/update_mqtt.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core.clock import Clock
from uplink.release import (
    MANIFEST_FILE,
    MAX_MANIFEST_BYTES,
    BundleError,
    Manifest,
    check_replaces,
    sha256_file,
    verify_manifest,
)

LOGGER = logging.getLogger(__name__)
MAX_CHUNK: Final = 32 * 1024
DEFAULT_MAX_BUNDLE: Final = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Chunk:
    """One answer: the bytes of `file` from `offset`, and the file's whole size."""

    offset: int
    data: bytes
    size: int


# (version, file, offset, length) -> the chunk; raises ConnectionError / TimeoutError on a loss
Transport = Callable[[str, str, int, int], Awaitable[Chunk]]


@dataclass(frozen=True, slots=True)
class FetchLimits:
    chunk_bytes: int = 16 * 1024
    pause_s: float = 0.05  # between chunks: at most chunk_bytes / pause_s bytes per second
    max_bundle_bytes: int = DEFAULT_MAX_BUNDLE


class Fetcher:
    def __init__(self, directory: Path, version: str, transport: Transport, clock: Clock,
                 limits: FetchLimits = FetchLimits()) -> None:
        assert 0 < limits.chunk_bytes <= MAX_CHUNK
        self.directory, self.version, self.transport = directory, version, transport
        self.clock, self.limits = clock, limits
        self.received_bytes = 0  # this run (a resumed run counts only what it fetched)

    async def bundle(self, release_key: Ed25519PublicKey, running: str,
                     floor: str | None) -> Manifest:
        """The verified manifest once every wheel is on disk with its hash; BundleError if not.

        ConnectionError / TimeoutError from the transport go through: call again to resume."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = await self.file(MANIFEST_FILE, None, MAX_MANIFEST_BYTES)
        try:
            manifest = verify_manifest(path.read_bytes(), release_key)
        except BundleError:
            path.unlink()  # fetched again at the next offer, not trusted as it is
            raise
        if manifest.version != self.version:
            raise BundleError("wrong_version", f"offered {self.version}, the manifest says "
                                               f"{manifest.version}")
        check_replaces(manifest, running, floor)
        if manifest.total_size > self.limits.max_bundle_bytes:
            raise BundleError("too_large", f"{manifest.total_size} bytes, at most "
                                           f"{self.limits.max_bundle_bytes}")
        for wheel in manifest.wheels:
            await self.file(wheel.file, wheel.sha256, wheel.size)
        return manifest

    async def file(self, name: str, sha256: str | None, size: int) -> Path:
        """`name` whole on disk: fetched from where its `.part` ends, then checked."""
        done, part = self.directory / name, self.directory / f"{name}.part"
        if done.exists() and (sha256 is None or sha256_file(done) == sha256):
            return done
        offset = part.stat().st_size if part.exists() else 0
        if offset:
            LOGGER.warning("update_download_resumed", extra={"version": self.version,
                                                             "file": name, "offset": offset})
        total = size if sha256 is not None else None
        while total is None or offset < total:
            chunk = await self.transport(self.version, name, offset,
                                         min(self.limits.chunk_bytes, size - offset or 1))
            total = self._check(name, chunk, offset, size, total)
            if not chunk.data:
                if offset < total:
                    raise BundleError("truncated", f"{name}: the sender has {offset} of "
                                                   f"{total} bytes")
                break
            _append(part, chunk.data)
            offset += len(chunk.data)
            self.received_bytes += len(chunk.data)
            await self.clock.sleep(self.limits.pause_s)
        if sha256 is not None and sha256_file(part) != sha256:
            part.unlink()
            raise BundleError("wrong_hash", f"{name}: does not hash to {sha256}")
        os.replace(part, done)
        return done

    def _check(self, name: str, chunk: Chunk, offset: int, size: int,
               total: int | None) -> int:
        if chunk.offset != offset or len(chunk.data) > self.limits.chunk_bytes:
            raise ConnectionError(f"{name}: chunk at {chunk.offset} (+{len(chunk.data)}), "
                                  f"asked for {offset}")
        if chunk.size > size:
            raise BundleError("too_large", f"{name}: {chunk.size} bytes, at most {size}")
        if total is not None and chunk.size < total:
            raise BundleError("truncated", f"{name}: the sender has {chunk.size} of {total}")
        if offset + len(chunk.data) > chunk.size:
            raise BundleError("too_large", f"{name}: more bytes than the {chunk.size} announced")
        return chunk.size if total is None else total


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
