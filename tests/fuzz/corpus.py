"""Seeds from the public corpora: ../shared/corpus (when present) and tests/corpus."""

from __future__ import annotations

import json
from functools import cache
from typing import Any, Final

from tests.fuzz.harness import ROOT

CORPUS_DIRS: Final = (ROOT.parent / "shared" / "corpus", ROOT / "tests" / "corpus")


def _load(relative: str) -> list[dict[str, Any]]:
    """Entries of one corpus file from every corpus directory that has it (deduplicated)."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for base in CORPUS_DIRS:
        path = base / relative
        if not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        for entry in data if isinstance(data, list) else []:
            key = json.dumps(entry, sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append(entry)
    return out


def _unhex(text: Any) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


@cache
def iec_readouts() -> tuple[bytes, ...]:
    """Identification line + readout frame, as the meter sends them."""
    out = []
    for entry in _load("iec62056/readouts.json"):
        ident = entry.get("ident_line") or ""
        text = entry.get("readout_text") or ""
        out.append((ident + text).encode("latin-1", "replace"))
    return tuple(out)


@cache
def dsmr_telegrams() -> tuple[bytes, ...]:
    entries = _load("iec62056/dsmr_telegrams.json")
    return tuple(e["telegram"].encode("latin-1", "replace")
                 for e in entries if isinstance(e.get("telegram"), str))


@cache
def wmbus_telegrams() -> tuple[tuple[bytes, bytes | None], ...]:
    """(frame from the L field, AES key or None) of every wM-Bus corpus telegram."""
    out = []
    for entry in _load("wmbus/telegrams.json"):
        frames = [entry.get("telegram_hex"), *(entry.get("telegram_sequence_hex") or [])]
        key = _unhex(entry.get("key_hex"))
        for text in frames:
            frame = _unhex(text)
            if frame:
                out.append((frame, key if key and len(key) == 16 else None))
    return tuple(out)


@cache
def mbus_frames() -> tuple[bytes, ...]:
    out = []
    for name in ("mbus/frames.json", "mbus/error_frames.json"):
        for entry in _load(name):
            frame = _unhex(entry.get("frame_hex"))
            if frame:
                out.append(frame)
    return tuple(out)


@cache
def wmbus_keys() -> dict[str, bytes]:
    """Meter id (8 hex digits, as printed) -> key, for every corpus telegram with a key."""
    keys: dict[str, bytes] = {}
    for frame, key in wmbus_telegrams():
        if key is None or len(frame) < 10:
            continue
        keys[frame[4:8][::-1].hex().upper()] = key
        if len(frame) >= 15 and frame[10] == 0x72:
            keys[frame[11:15][::-1].hex().upper()] = key
    return keys


@cache
def wmbus_diehl_key() -> bytes | None:
    """The Diehl / PRIOS default key the corpus names (implicit_default_key_hex), if any."""
    for entry in _load("wmbus/telegrams.json"):
        key = _unhex(entry.get("implicit_default_key_hex"))
        if key:
            return key
    return None


@cache
def wmbus_sequences() -> tuple[tuple[bytes, ...], ...]:
    """Telegram sequences (compact frames learn their format from an earlier full frame)."""
    out = []
    for entry in _load("wmbus/telegrams.json"):
        frames = [_unhex(t) for t in entry.get("telegram_sequence_hex") or []]
        if len(frames) > 1 and all(frames):
            out.append(tuple(f for f in frames if f))
    return tuple(out)
