"""IEC 62056-21 readouts, programming-mode replies and DSMR P1 telegrams, with the BCC or CRC16
recomputed after mutation (flag byte bit 0) so the data-set parser and OBIS mapping are reached."""

from __future__ import annotations

from typing import Final

from drivers.iec62056.datasets import parse_line
from drivers.iec62056.framing import (
    ETX,
    NAK,
    SOH,
    STX,
    bcc,
    build_command,
    build_data_frame,
    crc16_dsmr,
    frame_command,
    parse_identification,
)
from drivers.iec62056.framing import check_data_frame as check_frame
from drivers.iec62056.mapping import map_datasets
from drivers.iec62056.p1 import P1Port, telegram_end
from drivers.iec62056.readout import decode_message
from drivers.iec62056.session import choose_mode_c_baud, command_reply_end, data_frame_end
from tests.fuzz import corpus
from tests.fuzz.harness import Target
from tests.fuzz.sinks import check_samples

FIX: Final = 0x01
TOKENS: Final = (
    b"*kWh", b"*kW", b"*Wh", b"*MWh", b"*kvarh", b"*V", b"*A", b"*mA", b"(", b")", b"!", b"*",
    b"\x02", b"\x03", b"\x01", b"\x06", b"\x15", b"1-0:1.8.1", b"0-0:1.0.0", b"0-0:96.1.1",
    b"1.8.0", b"0.9.1", b"0.9.2", b"1.6.0", b"1-0:32.7.0", b"F.F", b"C.1.0", b"/ISK5\\2",
    b"(230101120000W)", b"(23-01-01 12:00)", b"/?!\r\n", b"\r\n!", b"*255", b"&1",
)


def _fix_bcc(raw: bytes, start_bytes: tuple[int, ...]) -> bytes:
    """Recompute the BCC of the first SOH/STX ... ETX frame (appended if cut off)."""
    starts = [p for p in (raw.find(bytes([b])) for b in start_bytes) if p >= 0]
    if not starts:
        return raw
    start = min(starts)
    etx = raw.find(bytes([ETX]), start + 1)
    if etx < 0:
        return raw
    check = bytes([bcc(raw[start + 1:etx + 1])])
    return raw[:etx + 1] + check + raw[etx + 2:]


def _fix_crc(raw: bytes) -> bytes:
    """Rewrite the DSMR `!CRC` trailer over '/' through '!'."""
    start, bang = raw.find(b"/"), raw.rfind(b"!")
    if start < 0 or bang < start:
        return raw
    line_end = raw.find(b"\n", bang)
    rest = b"" if line_end < 0 else raw[line_end + 1:]
    return raw[:bang + 1] + f"{crc16_dsmr(raw[start:bang + 1]):04X}".encode() + b"\r\n" + rest


def _flagged(seeds: tuple[bytes, ...] | list[bytes]) -> list[bytes]:
    return [bytes([FIX]) + s for s in seeds] + [b"\x00" + s for s in seeds]


# ---- data readout (mode A/B/C) ----------------------------------------------------------

def readout_wire(data: bytes) -> bytes:
    return _fix_bcc(data[1:], (STX,)) if data[:1] and data[0] & FIX else data[1:]


def run_readout(data: bytes) -> str:
    raw = readout_wire(data)
    data_frame_end(raw)
    first = raw[:raw.find(b"\n") + 1 or len(raw)]
    slash = first.find(b"/")
    if slash >= 0:
        ident = parse_identification(first[slash:])
        if ident.mode_c_baud is not None:
            choose_mode_c_baud(ident.mode_c_baud, 19200)
    readout = decode_message(raw)
    readout.to_json_dict()
    readout.raise_if_damaged("fuzz")
    check_samples(map_datasets(readout.datasets).samples)
    return "accepted"


# ---- DSMR P1 telegram ------------------------------------------------------------------

def p1_wire(data: bytes) -> bytes:
    return _fix_crc(data[1:]) if data[:1] and data[0] & FIX else data[1:]


def run_p1(data: bytes) -> str:
    raw = p1_wire(data)
    end = telegram_end(raw)
    if end is None:
        return "incomplete"
    raw = raw[:end]
    telegram = P1Port(None, "fuzz")._decode(raw[raw.find(b"/"):])
    if telegram is None:
        return "dropped"
    check_samples(telegram.mapped.samples)
    return "accepted"


# ---- programming mode: P0 prompt, R1/R5 replies -----------------------------------------

def _command_seeds() -> list[bytes]:
    lines = []
    for raw in (*corpus.iec_readouts(), *corpus.dsmr_telegrams()):
        lines += [ln.strip() for ln in raw.split(b"\n") if b"(" in ln]
    frames = [build_data_frame(ln) for ln in lines[:200]]
    frames += [build_command("P0", "(12345678)"), b"\x06", b"\x15", build_data_frame(b"(ERROR)")]
    return _flagged(frames)


def command_wire(data: bytes) -> bytes:
    return _fix_bcc(data[1:], (SOH, STX)) if data[:1] and data[0] & FIX else data[1:]


def run_command(data: bytes) -> str:
    raw = command_wire(data)
    command_reply_end(raw)
    reply = raw.lstrip(b"\r\n")
    if reply[:1] == bytes([NAK]):
        return "nak"
    if reply[:1] == bytes([SOH]):
        frame_command(reply)
        return "command"
    text = check_frame(reply).decode("latin-1")
    sets = parse_line(text.strip())
    if not sets or not sets[0].address:
        return "refusal"
    check_samples(map_datasets([sets[0]]).samples)
    return "value"


TARGETS: Final = (
    Target("iec_readout", lambda: _flagged(corpus.iec_readouts()), run_readout, tokens=TOKENS,
           protect=1, wire=readout_wire),
    Target("iec_command", _command_seeds, run_command, tokens=TOKENS, protect=1,
           wire=command_wire),
    Target("dsmr_p1", lambda: _flagged(corpus.dsmr_telegrams()), run_p1, tokens=TOKENS,
           protect=1, wire=p1_wire),
)
