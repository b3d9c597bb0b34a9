"""The two time tags of 60870-5-102: type A (5 octets, to the minute) and type B (7 octets, to the
millisecond), every bit kept so `parse(build(x)) == x`.

Type A, little-endian bit fields (REE profile, 60870-5-102 §7.2.6.x, checked against the
example frames of the public gisce/iec870ree tests):
  octet 1: minute (bits 0-5), TIS tariff information switch (6), IV invalid (7)
  octet 2: hour (0-4), RES1 (5-6), SU summer time (7)
  octet 3: day of month (0-4), day of week (5-7, 1 = Monday, 0 = not used)
  octet 4: month (0-3), ETI energy tariff information (4-5), PTI power tariff information (6-7)
  octet 5: year within the century (0-6), RES2 (7)
Type B puts two octets before those five: milliseconds (bits 0-9) and seconds (bits 10-15),
not the milliseconds-of-the-minute of 60870-5-101's CP56Time2a.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

from drivers.errors import FrameError

TIME_A_SIZE: Final = 5
TIME_B_SIZE: Final = 7
CENTURY: Final = 2000   # the profile carries two digits; REE meters are all of this century


@dataclass(frozen=True, slots=True)
class TimeA:
    minute: int
    hour: int
    day: int
    month: int
    year: int            # 0..99 within CENTURY
    weekday: int = 0     # 1 = Monday .. 7 = Sunday, 0 = not given
    invalid: bool = False
    summer: bool = False
    tis: bool = False
    eti: int = 0
    pti: int = 0
    res1: int = 0
    res2: bool = False

    def to_bytes(self) -> bytes:
        _check(self.minute, 63, "minute")
        _check(self.hour, 31, "hour")
        _check(self.day, 31, "day")
        _check(self.month, 15, "month")
        _check(self.year, 127, "year")
        _check(self.weekday, 7, "weekday")
        _check(self.eti, 3, "ETI")
        _check(self.pti, 3, "PTI")
        _check(self.res1, 3, "RES1")
        return bytes([
            self.minute | self.tis << 6 | self.invalid << 7,
            self.hour | self.res1 << 5 | self.summer << 7,
            self.day | self.weekday << 5,
            self.month | self.eti << 4 | self.pti << 6,
            self.year | self.res2 << 7])

    @classmethod
    def from_bytes(cls, data: bytes) -> TimeA:
        if len(data) != TIME_A_SIZE:
            raise FrameError(f"time tag A has {len(data)} octets, not {TIME_A_SIZE}")
        b0, b1, b2, b3, b4 = data
        return cls(minute=b0 & 0x3F, hour=b1 & 0x1F, day=b2 & 0x1F, month=b3 & 0x0F,
                   year=b4 & 0x7F, weekday=b2 >> 5, invalid=bool(b0 & 0x80),
                   summer=bool(b1 & 0x80), tis=bool(b0 & 0x40), eti=(b3 >> 4) & 3,
                   pti=b3 >> 6, res1=(b1 >> 5) & 3, res2=bool(b4 & 0x80))

    @classmethod
    def of(cls, when: dt.datetime, summer: bool = False) -> TimeA:
        """The tag of a wall-clock time (its own fields; no zone conversion)."""
        return cls(when.minute, when.hour, when.day, when.month, when.year - CENTURY,
                   when.isoweekday(), summer=summer)

    def wall(self, second: int = 0, microsecond: int = 0) -> dt.datetime:
        """The naive wall-clock time; FrameError for fields that are no date."""
        try:
            return dt.datetime(CENTURY + self.year, self.month, self.day, self.hour, self.minute,
                               second, microsecond)
        except ValueError as exc:
            raise FrameError(f"time tag is no date: {exc}") from None


@dataclass(frozen=True, slots=True)
class TimeB:
    millisecond: int     # 0..1023 as sent (a meter gives 0..999)
    second: int          # 0..63 as sent
    rest: TimeA

    def to_bytes(self) -> bytes:
        _check(self.millisecond, 1023, "millisecond")
        _check(self.second, 63, "second")
        word = self.millisecond | self.second << 10
        return word.to_bytes(2, "little") + self.rest.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> TimeB:
        if len(data) != TIME_B_SIZE:
            raise FrameError(f"time tag B has {len(data)} octets, not {TIME_B_SIZE}")
        word = int.from_bytes(data[:2], "little")
        return cls(word & 0x3FF, word >> 10, TimeA.from_bytes(data[2:]))

    @classmethod
    def of(cls, when: dt.datetime, summer: bool = False) -> TimeB:
        return cls(when.microsecond // 1000, when.second, TimeA.of(when, summer))

    def wall(self) -> dt.datetime:
        if self.millisecond > 999 or self.second > 59:
            raise FrameError(f"time tag B second {self.second} ms {self.millisecond}")
        return self.rest.wall(self.second, self.millisecond * 1000)


def _check(value: int, top: int, what: str) -> None:
    if not 0 <= value <= top:
        raise ValueError(f"{what} {value} does not fit its field (0..{top})")


def zoned(wall: dt.datetime, summer: bool, zone: ZoneInfo) -> dt.datetime:
    """A meter's wall-clock time in the site's zone; SU picks the side of the autumn hour that
    occurs twice (SU = 1: still summer time, the first of the two)."""
    return wall.replace(tzinfo=zone, fold=0 if summer else 1)


def tag_time(tag: TimeA | TimeB, zone: ZoneInfo) -> dt.datetime:
    """The aware time a tag names in `zone`."""
    wall = tag.wall()
    summer = tag.rest.summer if isinstance(tag, TimeB) else tag.summer
    return zoned(wall, summer, zone)
