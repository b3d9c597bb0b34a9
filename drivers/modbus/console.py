"""The Modbus console command `registers`: raw words of any slave, for a technician.

A meter with no profile yet, or one whose values look wrong, is checked by reading its
registers as they are: `registers BUS SLAVE START [COUNT] [holding|input]`. Each row shows the
word as hex, unsigned and signed, and the float32 it makes with the next word (high word
first, as most meters send it), so a technician can tell a float pair from two integers.
"""

from __future__ import annotations

import struct
from typing import Any

from drivers.modbus.plan import ReadRequest
from drivers.modbus.profiles import MODBUS_MAX_READ
from drivers.plugin import ConsoleCommand

FUNCTIONS = {"holding": 3, "input": 4}
DEFAULT_COUNT = 10
CONSOLE_READ_TIMEOUT_S = 1.0  # per attempt; a meter answers a read within ~50 ms
USAGE = "SLAVE START [COUNT] [holding|input]"


def parse_words(args: list[str]) -> tuple[int, ReadRequest]:
    """(slave, request) from the words after BUS; ValueError naming the word that is wrong."""
    if not 2 <= len(args) <= 4:
        raise ValueError("give a slave id, a start register and optionally a count and "
                         "holding or input")
    words = list(args)
    table = "holding"
    if words[-1] in FUNCTIONS:
        table = words.pop()
    if len(words) not in (2, 3):
        raise ValueError("give the slave id and start register before holding or input")
    slave = _number(words[0], "slave id", 1, 247)
    start = _number(words[1], "start register", 0, 0xFFFF)
    count = _number(words[2], "count", 1, MODBUS_MAX_READ) if len(words) == 3 else DEFAULT_COUNT
    if start + count > 0x10000:
        raise ValueError(f"start {start} + count {count} runs past register 65535")
    return slave, ReadRequest(FUNCTIONS[table], start, count)


def _number(word: str, what: str, low: int, high: int) -> int:
    try:
        value = int(word, 0)
    except ValueError:
        raise ValueError(f"{what} {word[:20]!r} is not a number") from None
    if not low <= value <= high:
        raise ValueError(f"{what} {value} is not in {low}..{high}")
    return value


def format_rows(req: ReadRequest, words: list[int]) -> list[str]:
    """One line per register: address, hex, unsigned, signed, float32 with the next word."""
    table = "holding" if req.function == 3 else "input"
    lines = [f"{len(words)} {table} registers from {req.address} (FC{req.function})",
             f"{'Register':>8}  {'Hex':6}  {'Unsigned':>8}  {'Signed':>6}  Float32 (with next)"]
    for index, word in enumerate(words):
        signed = word - 0x10000 if word & 0x8000 else word
        pair = ""
        if index + 1 < len(words):
            (as_float,) = struct.unpack(">f", struct.pack(">HH", word, words[index + 1]))
            pair = f"{as_float:.7g}"
        lines.append(f"{req.address + index:>8}  0x{word:04X}  {word:>8}  {signed:>6}  {pair}")
    return lines


async def _run(opened: Any, args: list[str]) -> list[str]:
    slave, req = parse_words(args)
    words = await opened.driver.read_registers(slave, req, CONSOLE_READ_TIMEOUT_S)
    return format_rows(req, words)


REGISTERS = ConsoleCommand(
    name="registers", usage=USAGE, help="read raw registers of any slave",
    details="START is the register number as sent on the wire (0-based; 40001 in a manual is "
            "holding 0). COUNT defaults to 10 (at most 125). Reads between the polls.",
    run=_run, role="technician", timeout_s=10.0)
