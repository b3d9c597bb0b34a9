"""Whole messages: an identification plus a data readout (BCC) or a DSMR telegram (CRC16).

`decode_message` never raises on damaged input: it returns what it could parse together with a
checksum verdict and a list of problems (each naming a byte offset). `Readout.raise_if_damaged`
turns that verdict into the project's errors, for callers that must not accept a damaged frame.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any, Final

from drivers.errors import ChecksumError, FrameError
from drivers.iec62056.datasets import DataSet, format_block, parse_block
from drivers.iec62056.framing import (
    CRLF,
    ETX,
    STX,
    Identification,
    bcc,
    build_data_frame,
    crc16_dsmr,
    parse_identification,
)

CHECKSUM_OK: Final = "ok"
CHECKSUM_BAD: Final = "bad"
CHECKSUM_MISSING: Final = "missing"  # the frame has an ETX / '!' but the checksum is cut off
CHECKSUM_NONE: Final = "none"  # the protocol variant carries no checksum (mode D, DSMR 2.2)
_HEX: Final = frozenset(string.hexdigits)
_BLANK: Final = b"\r\n \x00"


@dataclass(frozen=True, slots=True)
class Readout:
    identification: Identification | None
    datasets: tuple[DataSet, ...]
    checksum: str
    checksum_kind: str | None  # "bcc" | "crc16" | None
    problems: tuple[str, ...] = field(default=())

    @property
    def damaged(self) -> bool:
        return bool(self.problems) or self.checksum in (CHECKSUM_BAD, CHECKSUM_MISSING)

    def raise_if_damaged(self, source: str = "message") -> None:
        """Raise ChecksumError for a wrong/missing checksum, FrameError for any other damage."""
        if self.checksum in (CHECKSUM_BAD, CHECKSUM_MISSING):
            detail = [p for p in self.problems if "BCC" in p or "CRC" in p]
            raise ChecksumError(f"{source}: {detail[0] if detail else self.checksum}")
        if self.problems:
            raise FrameError(f"{source}: {self.problems[0]}")

    def to_json_dict(self) -> dict[str, Any]:
        ident = self.identification
        return {
            "identification": None if ident is None else {
                "manufacturer": ident.manufacturer,
                "baud_char": ident.baud_char,
                "enhanced": ident.enhanced,
                "model": ident.model,
            },
            "datasets": [
                {"address": s.address,
                 "values": [{"value": v.value, "unit": v.unit} for v in s.values]}
                for s in self.datasets
            ],
            "checksum": {"kind": self.checksum_kind, "verdict": self.checksum},
            "problems": list(self.problems),
        }


def _skip_echo_and_noise(raw: bytes, problems: list[str]) -> int:
    """Position of the identification's '/', past a request echo (`/?...!CRLF`) and noise."""
    pos = 0
    while True:
        start = raw.find(b"/", pos)
        if start < 0:
            return len(raw)
        if raw[pos:start].strip(_BLANK):
            problems.append(f"{start - pos} unexpected bytes before '/' (at byte offset {pos})")
        if raw.startswith(b"/?", start):  # a half-duplex probe's echo of our own request
            end = raw.find(b"\n", start)
            pos = len(raw) if end < 0 else end + 1
            continue
        return start


def _decode_frame(raw: bytes, stx: int, problems: list[str]) -> tuple[str, int, int]:
    """Check `STX data ETX BCC` at stx; returns (verdict, data start, data end)."""
    etx = raw.find(bytes([ETX]), stx + 1)
    if etx < 0:
        problems.append(f"no ETX after STX (at byte offset {stx})")
        return CHECKSUM_MISSING, stx + 1, len(raw)
    if etx + 1 >= len(raw):
        problems.append(f"BCC missing after ETX (at byte offset {etx})")
        return CHECKSUM_MISSING, stx + 1, etx
    expected = bcc(raw[stx + 1:etx + 1])
    verdict = CHECKSUM_OK
    if raw[etx + 1] != expected:
        problems.append(
            f"BCC 0x{raw[etx + 1]:02X} does not match computed 0x{expected:02X} "
            f"(at byte offset {etx + 1})"
        )
        verdict = CHECKSUM_BAD
    if raw[etx + 2:].strip(_BLANK):
        problems.append(f"unexpected bytes after BCC (at byte offset {etx + 2})")
    return verdict, stx + 1, etx


def _decode_crc_trailer(raw: bytes, start: int, bang: int, problems: list[str]) -> str:
    """Verify a DSMR `!XXXX` CRC over raw[start..bang]; no digits means no CRC (DSMR 2.2)."""
    line_end = raw.find(b"\n", bang)
    trailer = raw[bang + 1:len(raw) if line_end < 0 else line_end].strip(_BLANK)
    if not trailer:
        return CHECKSUM_NONE
    text = trailer.decode("latin-1")
    # Some meters print the CRC without leading zeros ("B9F"); the value is what counts.
    if len(text) > 4 or not set(text) <= _HEX:
        problems.append(f"CRC field {text!r} is not 1-4 hex digits (at byte offset {bang + 1})")
        return CHECKSUM_BAD
    expected = crc16_dsmr(raw[start:bang + 1])
    if int(text, 16) != expected:
        problems.append(
            f"CRC {text} does not match computed {expected:04X} (at byte offset {bang + 1})"
        )
        return CHECKSUM_BAD
    return CHECKSUM_OK


def _data_end(raw: bytes, start: int, end: int, problems: list[str]) -> int:
    """Position of the end '!' of the data lines inside raw[start:end]."""
    bang = raw.rfind(b"!", start, end)
    if bang < 0:
        problems.append(f"data block has no end '!' (at byte offset {end})")
        return end
    return bang


def decode_message(raw: bytes) -> Readout:
    """Decode identification + data (readout frame or telegram) from raw bytes, as received."""
    problems: list[str] = []
    ident: Identification | None = None
    pos = _skip_echo_and_noise(raw, problems) if raw.lstrip(_BLANK)[:1] != b"\x02" else 0
    ident_start = pos
    if pos < len(raw) and raw[pos] == ord("/"):
        line_end = raw.find(b"\n", pos)
        line_end = len(raw) if line_end < 0 else line_end + 1
        try:
            ident = parse_identification(raw[pos:line_end], pos)
        except FrameError as exc:
            problems.append(str(exc))
        pos = line_end
    stx = raw.find(bytes([STX]), pos)
    kind: str | None
    if stx >= 0 and not raw[pos:stx].strip(_BLANK + b"\x06012345:ABCDEFGHI"):
        kind = "bcc"
        verdict, data_start, data_stop = _decode_frame(raw, stx, problems)
        bang = _data_end(raw, data_start, data_stop, problems)
    else:
        data_start = pos
        bang = _data_end(raw, data_start, len(raw), problems)
        verdict = CHECKSUM_NONE
        if bang < len(raw):
            verdict = _decode_crc_trailer(raw, ident_start, bang, problems)
        kind = "crc16" if verdict != CHECKSUM_NONE else None
    text = raw[data_start:bang].decode("latin-1")
    sets, line_problems = parse_block(text, data_start)
    problems.extend(str(p) for p in line_problems)
    return Readout(ident, tuple(sets), verdict, kind, tuple(problems))


def encode_readout(
    ident: Identification | None, sets: list[DataSet] | tuple[DataSet, ...]
) -> bytes:
    """What a meter sends for a data readout: identification line, then STX data ! CRLF ETX BCC."""
    head = b"" if ident is None else ident.to_bytes()
    return head + build_data_frame(format_block(sets).encode("latin-1") + b"!" + CRLF)


def encode_telegram(ident: Identification, sets: list[DataSet] | tuple[DataSet, ...]) -> bytes:
    """A DSMR P1 telegram: identification, blank line, data lines, `!` and the CRC16."""
    body = ident.to_bytes() + CRLF + format_block(sets).encode("latin-1") + b"!"
    return body + f"{crc16_dsmr(body):04X}".encode("ascii") + CRLF
