"""DSMR P1 parsing against dsmr-parser (PyPI, a bench-only dependency, never imported by the
gateway): the DSMR 5 telegrams of tests/corpus/iec62056/dsmr_telegrams.json, CPU time.

Ours is the gateway's whole path for a telegram (decode_message: framing, CRC, data sets;
map_telegram: values in gateway quantities, units checked, M-Bus channels); dsmr-parser's is
TelegramParser(V5) with its checksum check. Prints JSON: telegrams per CPU second of each and
dsmr_vs_dsmr_parser_ratio (ours / theirs, above 1 is faster), median of RUNS with min and max.
Without dsmr-parser installed (`pip install dsmr-parser`, or a directory of it in
BENCH_EXTRA_PATH, appended to sys.path so it shadows nothing) the figures are null.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.iec62056.p1 import map_telegram
from drivers.iec62056.readout import decode_message

CORPUS = Path(__file__).resolve().parents[2] / "tests/corpus/iec62056/dsmr_telegrams.json"
RUNS = 5
ROUNDS = 300  # passes over the telegrams per run


def telegrams() -> list[str]:
    entries = json.loads(CORPUS.read_text())
    return [e["telegram"] for e in entries if "DSMR 5" in e.get("version", "")]


def rate(parse: Callable[[str], Any], texts: list[str]) -> float:
    """Telegrams per CPU second over ROUNDS passes."""
    start = time.process_time()
    for _ in range(ROUNDS):
        for text in texts:
            parse(text)
    return ROUNDS * len(texts) / (time.process_time() - start)


def ours(text: str) -> Any:
    readout = decode_message(text.encode("ascii"))
    return map_telegram(readout)


def theirs_parser() -> Callable[[str], Any] | None:
    extra = os.environ.get("BENCH_EXTRA_PATH")
    if extra:
        sys.path.append(extra)
    try:
        from dsmr_parser import telegram_specifications
        from dsmr_parser.parsers import TelegramParser
    except ImportError:
        return None
    parser = TelegramParser(telegram_specifications.V5, apply_checksum_validation=True)
    return parser.parse


def main() -> None:
    texts = telegrams()
    theirs = theirs_parser()
    result: dict[str, Any] = {"telegrams": len(texts), "runs": RUNS}
    if theirs is None:
        result.update(dsmr_vs_dsmr_parser_ratio=None, dsmr_vs_dsmr_parser_ratio_min=None,
                      dsmr_vs_dsmr_parser_ratio_max=None, note="dsmr-parser not installed")
        print(json.dumps(result))
        return
    for text in texts:  # both must read every telegram before any is timed
        ours(text)
        theirs(text)
    pairs = [(rate(ours, texts), rate(theirs, texts)) for _ in range(RUNS)]
    ratios = [a / b for a, b in pairs]
    result.update(
        ours_telegrams_per_cpu_s=round(statistics.median(a for a, _ in pairs)),
        dsmr_parser_telegrams_per_cpu_s=round(statistics.median(b for _, b in pairs)),
        dsmr_vs_dsmr_parser_ratio=round(statistics.median(ratios), 2),
        dsmr_vs_dsmr_parser_ratio_min=round(min(ratios), 2),
        dsmr_vs_dsmr_parser_ratio_max=round(max(ratios), 2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
