"""Benchmark: wM-Bus telegrams decoded per second on one core (mode 5 and plain, 20 records),
and over the real telegrams of tests/corpus/wmbus.

CPU time (time.process_time) on a pinned core, RUNS runs each: medians with min and max.
Warm: the decoder has seen the layout, so a telegram reuses its cached parse plan and sample
selection (the steady state of a meter sending every few minutes). Cold: a new decoder for
every telegram, so each one is walked, planned and its samples selected (a gateway's first
telegram of each meter). A telegram is decoded and mapped to samples (telegram_readings).

Prints one JSON object; `encrypted_per_s` and `plain_per_s` are the warm medians (the figures
this bench always gave), with `_min` / `_max`, the `cold_` figures and the `corpus_` ones.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from drivers.errors import DriverError
from drivers.mbus.mapping import telegram_readings
from drivers.mbus.records import RecordSpec
from drivers.wmbus.builder import build_frame, build_payload
from drivers.wmbus.telegram import KeyLookup, TelegramDecoder

KEY: Final = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
CORPUS: Final = Path(__file__).resolve().parents[2] / "tests/corpus/wmbus/telegrams.json"
RUNS: Final = 7
WARM_BATCH: Final = 3000     # telegrams a warm run (about 0.1 s of CPU)
COLD_BATCH: Final = 400      # telegrams a cold run
CORPUS_PASSES: Final = 10    # warm passes over the corpus a run

Job = Callable[[], int]      # runs once, returns the telegrams it decoded


def sample_specs() -> list[RecordSpec]:
    """A heat meter's typical layout: current and 6 historic registers, temperatures, flow."""
    specs = [
        RecordSpec(0x4, 0x06, 123456), RecordSpec(0x4, 0x14, 987654),
        RecordSpec(0x2, 0x5A, 612), RecordSpec(0x2, 0x5E, 421), RecordSpec(0x4, 0x3B, 1234),
        RecordSpec(0x4, 0x2B, 5600), RecordSpec(0xC, 0x78, 12345678), RecordSpec(0x2, 0x6C, 0x2C1F),
    ]
    specs += [RecordSpec(0x4, 0x06, 120000 - i * 1000, storage=i) for i in range(1, 7)]
    specs += [RecordSpec(0x4, 0x14, 980000 - i * 1000, storage=i) for i in range(1, 7)]
    return specs


def _pin() -> int | None:
    """Run on one core (the last one allowed); returns it, None where affinity is unknown."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    core = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def _rates(job: Job) -> list[float]:
    """Telegrams per CPU second of each of RUNS runs of `job`."""
    job()   # imports, first allocations: not part of any run
    rates = []
    for _ in range(RUNS):
        gc.collect()
        start = time.process_time()
        count = job()
        rates.append(count / (time.process_time() - start))
    return rates


def _figures(name: str, rates: list[float]) -> dict[str, int]:
    return {name: round(statistics.median(rates)), f"{name}_min": round(min(rates)),
            f"{name}_max": round(max(rates))}


def _keyed(key: bytes | None) -> KeyLookup:
    return lambda _meter: key


def _read(decoder: TelegramDecoder, frame: bytes, crcs_stripped: bool) -> None:
    telegram = decoder.decode(frame, crcs_stripped=crcs_stripped)
    telegram_readings(telegram.records, telegram.device_type, telegram.layout)


def warm(frame: bytes, key: bytes | None) -> Job:
    decoder = TelegramDecoder(_keyed(key))
    _read(decoder, frame, False)

    def job() -> int:
        for _ in range(WARM_BATCH):
            _read(decoder, frame, True)
        return WARM_BATCH
    return job


def cold(frame: bytes, key: bytes | None) -> Job:
    def job() -> int:
        for _ in range(COLD_BATCH):
            _read(TelegramDecoder(_keyed(key)), frame, True)
        return COLD_BATCH
    return job


def corpus_frames() -> list[tuple[bytes | None, list[bytes]]]:
    """(key, frames) of each corpus entry that decodes: a compact frame comes after the full
    frame it needs; manufacturer-specific CI fields and security modes are left out."""
    entries = json.loads(CORPUS.read_text())
    usable = []
    for entry in entries:
        key_hex = entry["key_hex"] or entry.get("implicit_default_key_hex")
        key = bytes.fromhex(key_hex) if key_hex else None
        frames = [bytes.fromhex(f) for f in entry.get("telegram_sequence_hex")
                  or [entry["telegram_hex"]]]
        decoder = TelegramDecoder(_keyed(key))
        try:
            for frame in frames:
                _read(decoder, frame, False)
        except DriverError:
            continue
        usable.append((key, frames))
    return usable


def corpus_warm(entries: list[tuple[bytes | None, list[bytes]]]) -> Job:
    decoders = []
    for key, frames in entries:
        decoder = TelegramDecoder(_keyed(key))
        for frame in frames:
            _read(decoder, frame, False)
        decoders.append((decoder, frames[-1]))

    def job() -> int:
        for _ in range(CORPUS_PASSES):
            for decoder, frame in decoders:
                _read(decoder, frame, False)
        return CORPUS_PASSES * len(decoders)
    return job


def corpus_cold(entries: list[tuple[bytes | None, list[bytes]]]) -> Job:
    def job() -> int:
        count = 0
        for key, frames in entries:
            decoder = TelegramDecoder(_keyed(key))
            for frame in frames:
                _read(decoder, frame, False)
            count += len(frames)
        return count
    return job


def main() -> None:
    core = _pin()
    payload = build_payload(sample_specs())
    plain = build_frame("KAM", "12345678", 0x1B, 0x04, payload, access_number=7)
    encrypted = build_frame("KAM", "12345678", 0x1B, 0x04, payload, access_number=7, key=KEY)
    entries = corpus_frames()
    result: dict[str, object] = {}
    result |= _figures("encrypted_per_s", _rates(warm(encrypted, KEY)))
    result |= _figures("plain_per_s", _rates(warm(plain, None)))
    result |= _figures("cold_encrypted_per_s", _rates(cold(encrypted, KEY)))
    result |= _figures("cold_plain_per_s", _rates(cold(plain, None)))
    result |= _figures("corpus_per_s", _rates(corpus_warm(entries)))
    result |= _figures("cold_corpus_per_s", _rates(corpus_cold(entries)))
    result |= {"records_per_telegram": len(sample_specs()), "corpus_telegrams": len(entries),
               "clock": "process_time", "runs": RUNS, "cpu": core}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
