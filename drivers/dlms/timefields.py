"""COSEM date, time and date-time (IEC 62056-6-2 4.1.6.1): 5, 4 and 12 octets with don't-care
fields, the deviation from UTC and the clock status byte.

Don't-care values (0xFF, year 0xFFFF, deviation 0x8000) become None, so a date-time that says
"every day at 00:00" stays what it says and is never turned into a wrong absolute time. The
deviation is minutes UTC minus local time, as the standard defines it (CET in winter: -60).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from drivers.errors import FrameError

DATE_BYTES: Final = 5
TIME_BYTES: Final = 4
DATE_TIME_BYTES: Final = 12
NOT_SPECIFIED: Final = 0xFF
YEAR_NOT_SPECIFIED: Final = 0xFFFF
DEVIATION_NOT_SPECIFIED: Final = 0x8000
MAX_DEVIATION_MIN: Final = 720
# month 0xFD / 0xFE: daylight saving end / begin; day 0xFD / 0xFE: second last / last of month
SPECIAL_MONTHS: Final = frozenset({0xFD, 0xFE})
SPECIAL_DAYS: Final = frozenset({0xFD, 0xFE})

# clock status bits
STATUS_INVALID: Final = 0x01
STATUS_DOUBTFUL: Final = 0x02
STATUS_DIFFERENT_BASE: Final = 0x04
STATUS_INVALID_STATUS: Final = 0x08
STATUS_DAYLIGHT_SAVING: Final = 0x80


def _opt(byte: int) -> int | None:
    return None if byte == NOT_SPECIFIED else byte


def _raw(value: int | None) -> int:
    return NOT_SPECIFIED if value is None else value


@dataclass(frozen=True, slots=True)
class CosemDate:
    year: int | None
    month: int | None
    day: int | None
    weekday: int | None

    def encode(self) -> bytes:
        year = YEAR_NOT_SPECIFIED if self.year is None else self.year
        return year.to_bytes(2, "big") + bytes(
            [_raw(self.month), _raw(self.day), _raw(self.weekday)])

    @property
    def definite(self) -> bool:
        return (None not in (self.year, self.month, self.day)
                and self.month not in SPECIAL_MONTHS and self.day not in SPECIAL_DAYS)

    def text(self) -> str:
        year = "****" if self.year is None else f"{self.year:04d}"
        return f"{year}-{_field(self.month)}-{_field(self.day)}"


@dataclass(frozen=True, slots=True)
class CosemTime:
    hour: int | None
    minute: int | None
    second: int | None
    hundredths: int | None

    def encode(self) -> bytes:
        return bytes([_raw(self.hour), _raw(self.minute), _raw(self.second),
                      _raw(self.hundredths)])

    @property
    def definite(self) -> bool:
        return None not in (self.hour, self.minute)

    def text(self) -> str:
        base = f"{_field(self.hour)}:{_field(self.minute)}:{_field(self.second)}"
        return base if not self.hundredths else f"{base}.{self.hundredths:02d}"


def _field(value: int | None) -> str:
    return "**" if value is None else f"{value:02d}"


@dataclass(frozen=True, slots=True)
class CosemDateTime:
    date: CosemDate
    time: CosemTime
    deviation: int | None  # minutes, UTC minus local; None: not specified
    clock_status: int | None  # None: not specified (0xFF)

    def encode(self) -> bytes:
        dev = DEVIATION_NOT_SPECIFIED if self.deviation is None else self.deviation & 0xFFFF
        return (self.date.encode() + self.time.encode() + dev.to_bytes(2, "big")
                + bytes([_raw(self.clock_status)]))

    def local(self) -> datetime | None:
        """The naive local time, when every field needed is given and valid; else None."""
        if not (self.date.definite and self.time.definite):
            return None
        assert self.date.year is not None and self.date.month is not None
        assert self.date.day is not None and self.time.hour is not None
        assert self.time.minute is not None
        try:
            return datetime(self.date.year, self.date.month, self.date.day, self.time.hour,
                            self.time.minute, self.time.second or 0,
                            (self.time.hundredths or 0) * 10_000)
        except ValueError:
            return None

    def utc(self) -> datetime | None:
        """The absolute time, when the local time and the deviation are both given."""
        local = self.local()
        if local is None or self.deviation is None:
            return None
        return (local + timedelta(minutes=self.deviation)).replace(tzinfo=UTC)

    def text(self) -> str:
        """ISO 8601 when definite (`2017-09-12T23:18:42` plus `+01:00` with a deviation),
        else the fields with `*` for don't-care."""
        local = self.local()
        if local is None:
            return f"{self.date.text()}T{self.time.text()}"
        text = local.isoformat()
        if self.deviation is None:
            return text
        offset = -self.deviation
        sign = "+" if offset >= 0 else "-"
        return f"{text}{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"


def decode_date(raw: bytes, offset: int = 0) -> CosemDate:
    if len(raw) != DATE_BYTES:
        raise FrameError(f"a COSEM date is {DATE_BYTES} octets, not {len(raw)}", offset)
    year = int.from_bytes(raw[0:2], "big")
    date = CosemDate(None if year == YEAR_NOT_SPECIFIED else year, _opt(raw[2]), _opt(raw[3]),
                     _opt(raw[4]))
    month_ok = date.month is None or 1 <= date.month <= 12 or date.month in SPECIAL_MONTHS
    day_ok = date.day is None or 1 <= date.day <= 31 or date.day in SPECIAL_DAYS
    weekday_ok = date.weekday is None or 1 <= date.weekday <= 7
    if not (month_ok and day_ok and weekday_ok):
        raise FrameError(f"COSEM date {raw.hex().upper()} has a field out of range", offset)
    return date


def decode_time(raw: bytes, offset: int = 0) -> CosemTime:
    if len(raw) != TIME_BYTES:
        raise FrameError(f"a COSEM time is {TIME_BYTES} octets, not {len(raw)}", offset)
    time = CosemTime(_opt(raw[0]), _opt(raw[1]), _opt(raw[2]), _opt(raw[3]))
    limits = ((time.hour, 23), (time.minute, 59), (time.second, 59), (time.hundredths, 99))
    if any(value is not None and value > limit for value, limit in limits):
        raise FrameError(f"COSEM time {raw.hex().upper()} has a field out of range", offset)
    return time


def decode_date_time(raw: bytes, offset: int = 0) -> CosemDateTime:
    if len(raw) != DATE_TIME_BYTES:
        raise FrameError(f"a COSEM date-time is {DATE_TIME_BYTES} octets, not {len(raw)}",
                         offset)
    dev_raw = int.from_bytes(raw[9:11], "big")
    deviation = None if dev_raw == DEVIATION_NOT_SPECIFIED else dev_raw - (
        0x10000 if dev_raw & 0x8000 else 0)
    if deviation is not None and abs(deviation) > MAX_DEVIATION_MIN:
        raise FrameError(f"COSEM deviation {deviation} min beyond ±{MAX_DEVIATION_MIN}",
                         offset + 9)
    return CosemDateTime(decode_date(raw[0:5], offset), decode_time(raw[5:9], offset + 5),
                         deviation, _opt(raw[11]))
