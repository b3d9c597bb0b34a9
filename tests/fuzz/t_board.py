"""What the modem supervisor parses: `mmcli -J` output (operator names and states come from the
modem and the network) and /proc/net/route. The first byte picks the parser."""

from __future__ import annotations

from typing import Final

from board.modem import (
    default_route_interface,
    parse_bearer,
    parse_modem,
    parse_modem_list,
    uplink_kind,
)
from tests.fuzz.harness import ROOT, Target

FIXTURES: Final = ROOT / "tests" / "board" / "fixtures" / "mmcli"
TOKENS: Final = (b'"--"', b'"0"', b'"-1"', b'"999999999999999999999"', b"null", b"[]", b"{}",
                 b'"/org/freedesktop/ModemManager1/Modem/"', b'"connected"', b"1E+999999",
                 b"00000000", b"\t", b"\n")


def _seeds() -> list[bytes]:
    seeds = []
    for path in sorted(FIXTURES.glob("*")):
        text = path.read_bytes()
        kind = 3 if path.suffix == ".txt" else 2 if "bearer" in path.name else (
            0 if "list" in path.name else 1)
        seeds.append(bytes([kind]) + text)
    return seeds


def run_board(data: bytes) -> str:
    kind, text = (data[0] if data else 0) % 4, data[1:].decode("utf-8", "replace")
    if kind == 0:
        return f"modems={min(len(parse_modem_list(text)), 2)}"
    if kind == 1:
        parse_modem(text)
        return "modem"
    if kind == 2:
        parse_bearer(text)
        return "bearer"
    return uplink_kind(default_route_interface(text))


TARGETS: Final = (
    Target("modem_status", _seeds, run_board, tokens=TOKENS, protect=1, weight=0.4),
)
