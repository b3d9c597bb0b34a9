"""DSMR / P1 ports: telegrams pushed by the meter every 1-10 s, parsed by the data-set parser.

The lead's service opens the port (DSMR 4/5: 115200 8N1; DSMR 2.2/3: 9600 7E1) and consumes
`telegrams(port)`. A telegram whose CRC does not verify is dropped, logged and counted: the next
one comes a few seconds later. A data set whose value is refused (out of range, no unit where
the DSMR table documents none) is logged and counted (`dataset_errors`); the rest of the telegram
is still used. Sub-meters on the M-Bus channels come as `P1Telegram.submeters`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from typing import Any, Final

from drivers.errors import DeviceTimeout, FrameError
from drivers.iec62056.mapping import DataSetRefused, MappedReadout, map_datasets
from drivers.iec62056.readout import Readout, decode_message
from drivers.iec62056.serialio import open_line
from drivers.iec62056.submeters import CHANNELS, SubMeterReading, map_submeters
from drivers.obis.units import DSMR_UNITS
from drivers.transport.stream import LineSettings

LOGGER = logging.getLogger(__name__)

# DSMR 2.2 meters push every 10 s; twice that without a telegram means the port is silent.
TELEGRAM_TIMEOUT_S: Final = 25.0
# Characters of one telegram follow each other closely; a long gap means a torn telegram.
P1_INTER_CHAR_TIMEOUT_S: Final = 1.0
# DSMR 4/5; a port object from board/ says what it was really opened with (DSMR 2.2: 9600 7E1).
P1_SETTINGS: Final = LineSettings(115200, 8, "N", 1)
P1_PROTOCOL: Final = "dsmr"  # the wire logger: drivers.dsmr.wire
# DSMR is the Dutch standard (Belgium's e-MUCS follows it): meter clocks keep CET, W = UTC+1.
DEFAULT_UTC_OFFSET_MIN: Final = 60


@dataclass(frozen=True, slots=True)
class P1Telegram:
    readout: Readout  # identification, data sets and CRC verdict
    mapped: MappedReadout  # samples in gateway quantities, meter time
    raw: bytes
    # M-Bus channels, each at its capture time; only captures the port has not yielded before
    submeters: tuple[SubMeterReading, ...] = ()


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


def map_telegram(
    readout: Readout, utc_offset_min: int = DEFAULT_UTC_OFFSET_MIN,
    channels: Collection[int] = CHANNELS,
) -> tuple[MappedReadout, list[SubMeterReading], list[DataSetRefused]]:
    """The meter's samples (DSMR unit table, S/W-flagged clock), the sub-meters on `channels`,
    and every data set refused by either."""
    mapped = map_datasets(readout.datasets, units=DSMR_UNITS, utc_offset_min=utc_offset_min)
    submeters, refused = map_submeters(readout.datasets, utc_offset_min, channels)
    return mapped, submeters, [*mapped.errors, *refused]


class P1Port:
    """Reads telegrams from one open port; `counters` says how many were good or dropped."""

    def __init__(self, port: Any, name: str = "p1", *, meter: str | None = None,
                 utc_offset_min: int = DEFAULT_UTC_OFFSET_MIN,
                 channels: Collection[int] = CHANNELS) -> None:
        self.port = port
        self.name = name
        self.meter = meter or name  # one meter per P1 port: its counters are the meter's
        self.utc_offset_min = utc_offset_min
        self.channels = frozenset(channels)  # M-Bus channels whose sub-meters are wanted
        self._refusing: set[str] = set()  # addresses already logged as refused
        # channel -> capture time (ms) last yielded: a sub-meter's value changes every 5 min or
        # hourly while telegrams come every second; one reading per capture, not per telegram
        self._captured: dict[int, int] = {}
        self.counters: dict[str, int] = {"telegrams_ok": 0, "crc_errors": 0, "frame_errors": 0,
                                         "dataset_errors": 0}

    async def telegrams(self) -> AsyncIterator[P1Telegram]:
        """Yield every telegram whose CRC verifies; raise DeviceTimeout when the port goes quiet."""
        line = open_line(self.port, self.name, P1_SETTINGS, protocol=P1_PROTOCOL)
        line.meter = self.meter
        try:
            while True:
                raw = await line.read_message(
                    telegram_end, TELEGRAM_TIMEOUT_S, P1_INTER_CHAR_TIMEOUT_S, "P1 telegram"
                )
                telegram = self._decode(raw[raw.find(b"/"):])
                if telegram is not None:
                    yield telegram
        finally:
            line.close()  # the port is ours once given (a port object: our duplicate of it)

    def _decode(self, raw: bytes) -> P1Telegram | None:
        readout = decode_message(raw)
        try:
            readout.raise_if_damaged(f"port {self.name}")
        except FrameError as exc:
            kind = "crc_errors" if readout.checksum == "bad" else "frame_errors"
            self.counters[kind] += 1
            LOGGER.warning("p1_telegram_dropped", extra={"port": self.name, "meter": self.meter,
                                                         "error": str(exc)})
            return None
        self.counters["telegrams_ok"] += 1
        mapped, submeters, refused = map_telegram(readout, self.utc_offset_min, self.channels)
        self._count_refused(refused)
        return P1Telegram(readout, mapped, raw, self._new_captures(submeters))

    def _new_captures(self, readings: list[SubMeterReading]) -> tuple[SubMeterReading, ...]:
        fresh = []
        for reading in readings:
            if self._captured.get(reading.channel) != reading.ts_ms:
                self._captured[reading.channel] = reading.ts_ms
                fresh.append(reading)
        return tuple(fresh)

    def _count_refused(self, errors: list[DataSetRefused]) -> None:
        """Count every refused data set; log each address once (telegrams come every second)."""
        for error in errors:
            self.counters["dataset_errors"] += 1
            first = error.address not in self._refusing
            self._refusing.add(error.address)
            LOGGER.log(logging.WARNING if first else logging.DEBUG, "p1_dataset_refused",
                       extra={"port": self.name, "meter": self.meter, "error": str(error)})


async def telegrams(port: Any, name: str = "p1", *, meter: str | None = None,
                    utc_offset_min: int = DEFAULT_UTC_OFFSET_MIN,
                    channels: Collection[int] = CHANNELS) -> AsyncIterator[P1Telegram]:
    """Good telegrams from a P1 port, forever (DeviceTimeout if the meter stops pushing)."""
    async for telegram in P1Port(port, name, meter=meter, utc_offset_min=utc_offset_min,
                                 channels=channels).telegrams():
        yield telegram


__all__ = ["DeviceTimeout", "P1Port", "P1Telegram", "SubMeterReading", "map_telegram",
           "telegrams"]
