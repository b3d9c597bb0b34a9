"""Benchmark: wM-Bus telegrams decoded per second on one core (mode 5 and plain, ~20 records).

Prints one JSON object: {"encrypted_per_s": N, "plain_per_s": N, "records_per_telegram": N}.
"""

from __future__ import annotations

import json
import time

from drivers.mbus.mapping import telegram_samples
from drivers.mbus.records import RecordSpec
from drivers.wmbus.builder import build_frame, build_payload
from drivers.wmbus.telegram import TelegramDecoder

KEY = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
DURATION_S = 1.5   # long enough for a stable rate, short enough for `make bench`


def sample_specs() -> list[RecordSpec]:
    """A heat meter's typical layout: current and 9 historic registers, temperatures, flow."""
    specs = [
        RecordSpec(0x4, 0x06, 123456), RecordSpec(0x4, 0x14, 987654),
        RecordSpec(0x2, 0x5A, 612), RecordSpec(0x2, 0x5E, 421), RecordSpec(0x4, 0x3B, 1234),
        RecordSpec(0x4, 0x2B, 5600), RecordSpec(0xC, 0x78, 12345678), RecordSpec(0x2, 0x6C, 0x2C1F),
    ]
    specs += [RecordSpec(0x4, 0x06, 120000 - i * 1000, storage=i) for i in range(1, 7)]
    specs += [RecordSpec(0x4, 0x14, 980000 - i * 1000, storage=i) for i in range(1, 7)]
    return specs


def rate(frame: bytes, key: bytes | None) -> float:
    decoder = TelegramDecoder(lambda _meter: key)
    decoder.decode(frame)
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < DURATION_S:
        for _ in range(200):
            telegram = decoder.decode(frame, crcs_stripped=True)
            telegram_samples(telegram.records, telegram.device_type, telegram.layout)
        count += 200
    return count / (time.perf_counter() - start)


def main() -> None:
    payload = build_payload(sample_specs())
    plain = build_frame("KAM", "12345678", 0x1B, 0x04, payload, access_number=7)
    encrypted = build_frame("KAM", "12345678", 0x1B, 0x04, payload, access_number=7, key=KEY)
    result = {
        "encrypted_per_s": round(rate(encrypted, KEY)),
        "plain_per_s": round(rate(plain, None)),
        "records_per_telegram": len(sample_specs()),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
