"""The chunk request / answer pair of an update download (docs/update.md), CBOR maps on
`<prefix>/<gw>/update/req` (gateway -> head-end) and `<prefix>/<gw>/update/chunk` (back).

Not signed: every byte is checked against the release-key-signed manifest before it is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import cbor2

from uplink.cose import loads_strict
from uplink.errors import BadMessage

MAX_CHUNK_BYTES: Final = 32 * 1024
MAX_NAME: Final = 200


def update_topics(prefix: str, gw: str) -> dict[str, str]:
    return {"req": f"{prefix}/{gw}/update/req", "chunk": f"{prefix}/{gw}/update/chunk"}


@dataclass(frozen=True, slots=True)
class ChunkRequest:
    version: str
    file: str
    offset: int
    length: int

    def encode(self) -> bytes:
        return cbor2.dumps({"v": self.version, "f": self.file, "o": self.offset,
                            "n": self.length})


@dataclass(frozen=True, slots=True)
class ChunkAnswer:
    version: str
    file: str
    offset: int
    data: bytes
    size: int  # the whole file's; -1: the head-end has no such file

    def encode(self) -> bytes:
        return cbor2.dumps({"v": self.version, "f": self.file, "o": self.offset,
                            "d": self.data, "s": self.size})


def _fields(payload: bytes, what: str) -> Mapping[str, Any]:
    obj = loads_strict(payload, what)
    if not isinstance(obj, Mapping):
        raise BadMessage(f"{what}: not a map")
    for key in ("v", "f"):
        value = obj.get(key)
        if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
            raise BadMessage(f"{what}: {key} must be text of 1 .. {MAX_NAME}")
    offset = obj.get("o")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise BadMessage(f"{what}: o must be a non-negative integer")
    return obj


def decode_request(payload: bytes) -> ChunkRequest:
    obj = _fields(payload, "chunk request")
    length = obj.get("n")
    if not isinstance(length, int) or isinstance(length, bool) or \
            not 0 < length <= MAX_CHUNK_BYTES:
        raise BadMessage(f"chunk request: n must be 1 .. {MAX_CHUNK_BYTES}")
    return ChunkRequest(obj["v"], obj["f"], obj["o"], length)


def decode_answer(payload: bytes) -> ChunkAnswer:
    obj = _fields(payload, "chunk")
    data, size = obj.get("d"), obj.get("s")
    if not isinstance(data, bytes) or len(data) > MAX_CHUNK_BYTES:
        raise BadMessage(f"chunk: d must be at most {MAX_CHUNK_BYTES} bytes")
    if not isinstance(size, int) or isinstance(size, bool) or size < -1:
        raise BadMessage("chunk: s must be an integer >= -1")
    return ChunkAnswer(obj["v"], obj["f"], obj["o"], data, size)
