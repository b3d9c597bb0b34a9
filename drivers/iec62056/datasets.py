"""The data-set grammar shared by IEC 62056-21 readouts and DSMR telegrams.

A data line holds one or more data sets `address(value*unit)(value*unit)...`; a line that starts
with `(` continues the previous data set (DSMR 2.2 gas readings). Parsing is strict but resyncs at
the next line, so one damaged line is reported with its byte offset and the rest still parses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from drivers.errors import FrameError

# IEC 62056-21 limits: address 16, value 32, unit 16 characters. DSMR text messages (96.13.0)
# carry up to 1024 characters as 2048 hex digits, so values get the larger bound.
ADDRESS_MAX: Final = 16
VALUE_MAX: Final = 2048
UNIT_MAX: Final = 16
_ADDRESS_FORBIDDEN: Final = frozenset("()/!")  # `*` marks the F group (1.8.1*1)
_VALUE_FORBIDDEN: Final = frozenset("()*/!")


@dataclass(frozen=True, slots=True)
class DataValue:
    """One value group; `unit` is None when there is no `*`, "" for `value*` with nothing after."""

    value: str
    unit: str | None = None

    def to_text(self) -> str:
        return f"({self.value})" if self.unit is None else f"({self.value}*{self.unit})"


@dataclass(frozen=True, slots=True)
class DataSet:
    address: str
    values: tuple[DataValue, ...]

    def to_text(self) -> str:
        return self.address + "".join(v.to_text() for v in self.values)


@dataclass(frozen=True, slots=True)
class LineProblem:
    """A data line that could not be parsed; offset is relative to the parsed text's start."""

    offset: int
    reason: str

    def __str__(self) -> str:
        return self.reason


def _bad_char(forbidden: frozenset[str]) -> re.Pattern[str]:
    """A character outside printable ASCII, or one of `forbidden` (searched in C: a DSMR
    telegram has about a hundred values, and a loop per character was a fifth of its parse)."""
    return re.compile("[^ -~]|[" + "".join(re.escape(c) for c in sorted(forbidden)) + "]")


_BAD_IN_VALUE: Final = _bad_char(_VALUE_FORBIDDEN)
_BAD_IN_ADDRESS: Final = _bad_char(_ADDRESS_FORBIDDEN)


def _check_chars(text: str, what: str, limit: int, offset: int,
                 bad: re.Pattern[str] = _BAD_IN_VALUE) -> None:
    if len(text) > limit:
        raise FrameError(f"{what} longer than {limit} characters", offset)
    found = bad.search(text)
    if found is not None:
        raise FrameError(f"invalid character {found.group()!r} in {what}",
                         offset + found.start())


def _parse_value(text: str, offset: int) -> DataValue:
    value, star, unit = text.partition("*")
    _check_chars(value, "value", VALUE_MAX, offset)
    if not star:
        return DataValue(value)
    _check_chars(unit, "unit", UNIT_MAX, offset + len(value) + 1)
    return DataValue(value, unit)


def parse_line(line: str, offset: int = 0) -> list[DataSet]:
    """Parse one data line (no line end) into its data sets; raises FrameError with an offset."""
    sets: list[DataSet] = []
    _parse_line_into(line, offset, sets)
    return sets


def _parse_line_into(line: str, offset: int, sets: list[DataSet]) -> None:
    """Append the line's data sets to `sets`; those before a damaged spot stay appended."""
    pos = 0
    while pos < len(line):
        open_at = line.find("(", pos)
        if open_at < 0:
            raise FrameError(f"data set {line[pos:pos + 20]!r} has no '(' value", offset + pos)
        address = line[pos:open_at]
        _check_chars(address, "address", ADDRESS_MAX, offset + pos, _BAD_IN_ADDRESS)
        values: list[DataValue] = []
        pos = open_at
        while pos < len(line) and line[pos] == "(":
            close_at = line.find(")", pos + 1)
            if close_at < 0:
                raise FrameError("value group is not closed by ')'", offset + pos)
            values.append(_parse_value(line[pos + 1:close_at], offset + pos + 1))
            pos = close_at + 1
        sets.append(DataSet(address, tuple(values)))


def parse_block(text: str, base_offset: int = 0) -> tuple[list[DataSet], list[LineProblem]]:
    """Parse the data lines of a block (without the end `!`); CRLF, LF and blank lines allowed.

    Returns the data sets and one problem per line that failed (that line is skipped).
    """
    sets: list[DataSet] = []
    problems: list[LineProblem] = []
    offset = 0
    for raw_line in text.split("\n"):
        line = raw_line.removesuffix("\r")
        line_offset = base_offset + offset
        offset += len(raw_line) + 1
        if not line:
            continue
        parsed: list[DataSet] = []
        try:
            _parse_line_into(line, line_offset, parsed)
        except FrameError as exc:
            problems.append(LineProblem(exc.offset or line_offset, str(exc)))
        if not parsed:
            continue
        if parsed[0].address == "" and sets:
            # DSMR 2.2: a value line continuing the previous object ("(00054.386)").
            last = sets.pop()
            parsed[0] = DataSet(last.address, last.values + parsed[0].values)
        sets.extend(parsed)
    return sets, problems


def format_block(sets: list[DataSet] | tuple[DataSet, ...]) -> str:
    """Data lines, one data set per line, each ended by CRLF (the inverse of parse_block)."""
    return "".join(s.to_text() + "\r\n" for s in sets)
