"""DSMR / P1 ports: telegrams pushed by the meter every 1-10 s, parsed by the data-set parser.

The lead's service opens the port (DSMR 4/5: 115200 8N1; DSMR 2.2/3: 9600 7E1) and consumes
`telegrams(port)`. A telegram whose CRC does not verify is dropped, logged and counted: the next
one comes a few seconds later.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

from drivers.errors import DeviceTimeout, FrameError
from drivers.iec62056.obis import MappedReadout, map_datasets
from drivers.iec62056.readout import Readout, decode_message
from drivers.iec62056.serialio import SerialLine

LOGGER = logging.getLogger(__name__)

# DSMR 2.2 meters push every 10 s; twice that without a telegram means the port is silent.
TELEGRAM_TIMEOUT_S: Final = 25.0
# Characters of one telegram follow each other closely; a long gap means a torn telegram.
P1_INTER_CHAR_TIMEOUT_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class P1Telegram:
    readout: Readout  # identification, data sets and CRC verdict
    mapped: MappedReadout  # samples in gateway quantities, meter time
    raw: bytes


def telegram_end(buf: bytes) -> int | None:
    """End of the first complete telegram (`/` ... `!CRC CRLF`) in buf, garbage before included."""
    start = buf.find(b"/")
    if start < 0:
        return None
    bang = buf.find(b"!", start)
    if bang < 0:
        return None
    line_end = buf.find(b"\n", bang)
    return None if line_end < 0 else line_end + 1


class P1Port:
    """Reads telegrams from one open port; `counters` says how many were good or dropped."""

    def __init__(self, port: Any, name: str = "p1") -> None:
        self.port = port
        self.name = name
        self.counters: dict[str, int] = {"telegrams_ok": 0, "crc_errors": 0, "frame_errors": 0}

    async def telegrams(self) -> AsyncIterator[P1Telegram]:
        """Yield every telegram whose CRC verifies; raise DeviceTimeout when the port goes quiet."""
        line = SerialLine(self.port, self.name)
        try:
            while True:
                raw = await line.read_message(
                    telegram_end, TELEGRAM_TIMEOUT_S, P1_INTER_CHAR_TIMEOUT_S, "P1 telegram"
                )
                telegram = self._decode(raw[raw.find(b"/"):])
                if telegram is not None:
                    yield telegram
        finally:
            line.release()  # the port belongs to the caller

    def _decode(self, raw: bytes) -> P1Telegram | None:
        readout = decode_message(raw)
        try:
            readout.raise_if_damaged(f"port {self.name}")
        except FrameError as exc:
            kind = "crc_errors" if readout.checksum == "bad" else "frame_errors"
            self.counters[kind] += 1
            LOGGER.warning("p1_telegram_dropped", extra={"port": self.name, "error": str(exc)})
            return None
        self.counters["telegrams_ok"] += 1
        return P1Telegram(readout, map_datasets(readout.datasets), raw)


async def telegrams(port: Any, name: str = "p1") -> AsyncIterator[P1Telegram]:
    """Good telegrams from a P1 port, forever (DeviceTimeout if the meter stops pushing)."""
    async for telegram in P1Port(port, name).telegrams():
        yield telegram


__all__ = ["DeviceTimeout", "P1Port", "P1Telegram", "telegrams"]
