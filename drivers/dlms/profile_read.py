"""Profile generic reads by range (selective access selector 1 on the clock column), and a
file cursor for the command line.

The gateway's polls do not use the cursor: they read on from the gateway's own mark of the
series (`Context.records_until`, advanced in the transaction that stores the rows; see
drivers/dlms/records.py), which a power cut cannot leave ahead of the stored rows.
`ProfileCursor` is the fallback for a tool without a store (`read_missing`).

Times are the meter's own local time (naive): the range goes out with the deviation "not
specified", and rows come back dated by their clock column, so no time zone is guessed.
`ProfileCursor` keeps, per meter and profile, the time of the last row handed on, in a small
0600 JSON file written atomically; the next read asks from one second after it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from drivers.dlms.apdu import Access
from drivers.dlms.axdr import Data, Tag
from drivers.dlms.client import Association
from drivers.dlms.cosem import (
    CLOCK,
    PROFILE_GENERIC,
    REGISTER,
    CaptureObject,
    ProfileRow,
    ScalerUnit,
    obis_bytes,
    profile_rows,
)
from drivers.dlms.timefields import CosemDate, CosemDateTime, CosemTime
from drivers.errors import DriverError, FrameError

BUFFER: Final = 2
CAPTURE_OBJECTS: Final = 3
FIRST_READ_SPAN: Final = timedelta(days=1)  # a meter never read: its last day
FILE_MODE: Final = 0o600
FORMAT: Final = 1


def date_time(when: datetime, deviation: int | None = None) -> CosemDateTime:
    return CosemDateTime(CosemDate(when.year, when.month, when.day, when.isoweekday()),
                         CosemTime(when.hour, when.minute, when.second, 0), deviation,
                         None if deviation is None else 0)


def date_time_data(when: datetime, deviation: int | None = None) -> Data:
    return Data(Tag.OCTET_STRING, date_time(when, deviation).encode())


def capture_data(class_id: int, obis: bytes, index: int) -> Data:
    return Data(Tag.STRUCTURE, (Data(Tag.LONG_UNSIGNED, class_id), Data(Tag.OCTET_STRING, obis),
                                Data(Tag.INTEGER, index), Data(Tag.LONG_UNSIGNED, 0)))


def range_access(start: datetime, end: datetime,
                 clock_obis: bytes = obis_bytes("0-0:1.0.0.255")) -> Access:
    """Selective access by range on the clock column (selector 1), every column."""
    return Access(1, Data(Tag.STRUCTURE, (capture_data(CLOCK, clock_obis, 2),
                                          date_time_data(start), date_time_data(end),
                                          Data(Tag.ARRAY, ()))))


@dataclass(frozen=True, slots=True)
class ProfileRead:
    rows: list[ProfileRow]
    asked_from: datetime
    asked_to: datetime
    scalers: dict[str, ScalerUnit] | None = None  # every register column's, to give next time


async def read_range(association: Association, obis: str, start: datetime, end: datetime,
                     scalers: dict[str, ScalerUnit] | None = None) -> ProfileRead:
    """The rows from `start` to `end` (meter time), values scaled by each register column's
    scaler_unit (read from the register when not given)."""
    raw = obis_bytes(obis)
    capture_raw = await association.get(PROFILE_GENERIC, raw, CAPTURE_OBJECTS)
    if capture_raw.tag is not Tag.ARRAY or not isinstance(capture_raw.value, tuple):
        raise FrameError(f"capture_objects of {obis} is not an array", 0)
    capture = [CaptureObject.from_data(item) for item in capture_raw.value]
    known = dict(scalers or {})
    for column in capture:
        if column.class_id == REGISTER and column.obis not in known:
            known[column.obis] = ScalerUnit.from_data(
                await association.get(REGISTER, obis_bytes(column.obis), 3))
    buffer = await association.get(PROFILE_GENERIC, raw, BUFFER, range_access(start, end))
    return ProfileRead(profile_rows(capture, buffer, known), start, end, known)


class ProfileCursorError(DriverError):
    """The profile cursor file is unreadable or malformed."""


class ProfileCursor:
    """Per `meter/profile`: the meter time of the last row handed on."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._last: dict[str, datetime] = {}
        if self.path.exists():
            try:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
                if raw.get("format") != FORMAT:
                    raise ValueError(f"format {raw.get('format')!r}")
                self._last = {k: datetime.fromisoformat(v) for k, v in raw["last"].items()}
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                raise ProfileCursorError(f"profile cursor {self.path}: {error}") from None

    def last(self, meter: str, obis: str) -> datetime | None:
        return self._last.get(f"{meter}/{obis}")

    def start(self, meter: str, obis: str, now: datetime) -> datetime:
        """Where the next read begins: just after the last row, or a day back."""
        last = self.last(meter, obis)
        return now - FIRST_READ_SPAN if last is None else last + timedelta(seconds=1)

    def advance(self, meter: str, obis: str, rows: list[ProfileRow]) -> None:
        """Call once the rows are kept: the cursor moves to the newest dated row."""
        dated = [r.when for r in rows if r.when is not None]
        if not dated:
            return
        key = f"{meter}/{obis}"
        newest = max(dated)
        if key in self._last and newest <= self._last[key]:
            return
        self._last[key] = newest
        self._save()

    def _save(self) -> None:
        body = {"format": FORMAT, "last": {k: v.isoformat() for k, v in sorted(
            self._last.items())}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".dlms-profile-")
        try:
            os.fchmod(fd, FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(body, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


async def read_missing(association: Association, cursor: ProfileCursor, meter: str, obis: str,
                       now: datetime) -> ProfileRead:
    """The rows the gateway does not have yet (from the cursor to `now`); the caller keeps
    them, then calls `cursor.advance(meter, obis, read.rows)`."""
    return await read_range(association, obis, cursor.start(meter, obis, now), now)
