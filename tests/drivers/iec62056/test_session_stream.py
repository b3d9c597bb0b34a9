"""IEC 62056-21 sessions over the in-memory stream: public captures split at every point come
out whole, the mode C acknowledgement goes at 300 baud and the line switches after it."""

from __future__ import annotations

import json

import pytest

from drivers.iec62056.serialio import IEC_SETTINGS
from drivers.iec62056.session import Session
from drivers.transport.memory import MemoryStream, split_every_way
from drivers.transport.stream import LineSettings
from tests.corpus import CORPUS

READOUTS = {entry["meter"]: entry for entry in
            json.loads((CORPUS / "iec62056" / "readouts.json").read_text())}
SMALL = READOUTS["Kamstrup Multical 66C (district heating meter)"]
LARGE = READOUTS["Landis+Gyr E650 ZMD310 (ident ZMD3102400)"]
MAX_BAUD = 9600
STRIDE = 97  # split points through the 3.5 kB capture (every point would be 3566 reads)


def _bytes(text: str) -> bytes:
    return text.encode("latin-1")


@pytest.mark.parametrize("chunks", split_every_way(_bytes(SMALL["ident_line"]
                                                          + SMALL["readout_text"])))
async def test_mode_a_readout_whole_at_every_split(chunks: list[bytes]) -> None:
    line = MemoryStream(protocol="iec62056", settings=IEC_SETTINGS)
    line.reply_after_write(chunks)
    raw, baud = await Session(line, "heat-1", echo=False).readout("", "A", MAX_BAUD)
    assert raw == _bytes(SMALL["ident_line"] + SMALL["readout_text"])
    assert baud == 300 and line.writes == [b"/?!\r\n"] and line.line_changes == []


def _large_chunkings() -> list[list[bytes]]:
    frame = _bytes(LARGE["readout_text"])
    strided = [[frame[:i], frame[i:]] for i in range(1, len(frame), STRIDE)]
    return [[frame], *strided, [frame[i:i + 1] for i in range(len(frame))]]


@pytest.mark.parametrize("chunks", _large_chunkings(), ids=lambda c: str(len(c[0])))
async def test_mode_c_switches_after_the_ack(chunks: list[bytes]) -> None:
    line = MemoryStream(protocol="iec62056", settings=IEC_SETTINGS)
    line.reply_after_write([_bytes(LARGE["ident_line"])])
    line.reply_after_write(chunks)  # the meter answers the ACK at the new rate
    raw, baud = await Session(line, "e650", echo=False).readout("", "C", MAX_BAUD)
    assert raw == _bytes(LARGE["ident_line"] + LARGE["readout_text"])
    assert baud == 4800  # the identification's '4'
    assert line.writes == [b"/?!\r\n", b"\x06040\r\n"]
    assert line.line_changes == [LineSettings(4800, 7, "E", 1)]


async def test_echo_of_a_half_duplex_line_is_consumed() -> None:
    line = MemoryStream(protocol="iec62056", settings=IEC_SETTINGS)
    line.reply_after_write([b"/?!\r\n", _bytes(SMALL["ident_line"] + SMALL["readout_text"])])
    raw, _ = await Session(line, "heat-1", echo=True).readout("", "A", MAX_BAUD)
    assert raw.startswith(b"/KAM")
