"""The simulated meter's COSEM objects: registers with scaler_unit, the clock, a load profile
whose buffer grows in real time (one row per capture period of the injected wall clock) with
selective access by range, a billing profile (one row at the start of each month, the last
`BILLING_MONTHS`), and a disconnector (class 70).

Pure state over an injected wall clock (Unix ms): `get(class, obis, attribute, access)` ->
Data or a data-access-result, `set(...)`, `action(...)`. The meter's time is UTC (deviation 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from drivers.dlms.apdu import Access
from drivers.dlms.axdr import Data, Tag
from drivers.dlms.cosem import (
    CLOCK,
    DISCONNECT_CONTROL,
    PROFILE_GENERIC,
    REGISTER,
    REMOTE_DISCONNECT_METHOD,
    REMOTE_RECONNECT_METHOD,
    clock_time,
    obis_bytes,
)
from drivers.dlms.profile_read import capture_data
from drivers.dlms.profile_read import date_time_data as meter_time_data
from drivers.errors import FrameError

READ_WRITE_DENIED: Final = 3
OBJECT_UNDEFINED: Final = 4
TYPE_UNMATCHED: Final = 12
OTHER_REASON: Final = 250
CLOCK_OBIS: Final = obis_bytes("0-0:1.0.0.255")
LOAD_PROFILE_OBIS: Final = obis_bytes("1-0:99.1.0.255")
BILLING_OBIS: Final = obis_bytes("0-0:98.1.0.255")
EXPORT_OBIS: Final = obis_bytes("1-0:2.8.0.255")
DISCONNECTOR_OBIS: Final = obis_bytes("0-0:96.3.10.255")
ENERGY_OBIS: Final = obis_bytes("1-0:1.8.0.255")
CAPTURE_PERIOD_S: Final = 900
MAX_ROWS: Final = 2880  # 30 days of 15-minute rows; older ones leave the buffer
BILLING_MONTHS: Final = 12
BILLING_MONTH_WH: Final = 150_000  # 1.8.0 a month before the load profile's first row


def date_time_data(when: datetime) -> Data:
    """The meter's clock is UTC: deviation 0."""
    return meter_time_data(when, 0)


@dataclass
class SimRegister:
    """Register (class 3): value as its raw integer, scaler and unit enumeration."""

    raw: int
    scaler: int
    unit: int
    tag: Tag = Tag.DOUBLE_LONG_UNSIGNED

    def attribute(self, index: int) -> Data | int:
        if index == 2:
            return Data(self.tag, self.raw)
        if index == 3:
            return Data(Tag.STRUCTURE, (Data(Tag.INTEGER, self.scaler), Data(Tag.ENUM, self.unit)))
        return OBJECT_UNDEFINED


def default_registers() -> dict[bytes, SimRegister]:
    """The registers a generic IEC/DLMS UA meter has: energies (Wh, scaler 0 and 1), power,
    voltage (scaler -1), current (scaler -2)."""
    return {obis_bytes("1-0:1.8.0.255"): SimRegister(12_345_678, 0, 30),
            obis_bytes("1-0:2.8.0.255"): SimRegister(4321, 1, 30),
            obis_bytes("1-0:1.7.0.255"): SimRegister(1530, 0, 27),
            obis_bytes("1-0:32.7.0.255"): SimRegister(2301, -1, 35, Tag.LONG_UNSIGNED),
            obis_bytes("1-0:31.7.0.255"): SimRegister(652, -2, 33, Tag.LONG_UNSIGNED)}


@dataclass
class SimObjects:
    """Every object of the simulated meter, over `wall_ms`."""

    wall_ms: Callable[[], int]
    registers: dict[bytes, SimRegister] = field(default_factory=default_registers)
    profile_start_ms: int | None = None  # the first row; None: the clock's time at start
    energy_per_period: int = 250  # Wh added to 1.8.0 per profile row
    capture_period_s: int = CAPTURE_PERIOD_S  # a test may run a 1-minute profile
    clock_offset_ms: int = 0
    output_state: bool = True
    control_state: int = 1  # connected
    control_mode: int = 1
    actions: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.profile_start_ms is None:
            period = self.capture_period_s
            start = self.wall_ms() // 1000 // period * period * 1000
            self.profile_start_ms = start - 4 * period * 1000  # 4 rows at start

    def now(self) -> datetime:
        return datetime.fromtimestamp((self.wall_ms() + self.clock_offset_ms) / 1000, UTC)

    # ---- profile -------------------------------------------------------------------------
    def profile_rows(self) -> list[tuple[datetime, int]]:
        """(end of interval, 1.8.0 at that time) for every closed interval up to now."""
        assert self.profile_start_ms is not None
        first = self.profile_start_ms // 1000
        count = self._row_count()
        base = self.registers[ENERGY_OBIS].raw
        rows = [(datetime.fromtimestamp(first + i * self.capture_period_s, UTC),
                 base + i * self.energy_per_period) for i in range(count)]
        return rows[-MAX_ROWS:]

    def _row_count(self) -> int:
        assert self.profile_start_ms is not None
        elapsed = int(self.now().timestamp()) - self.profile_start_ms // 1000
        return max(0, elapsed // self.capture_period_s + 1)

    def energy_now(self) -> int:
        """1.8.0 grows by `energy_per_period` each capture period (the profile's last row)."""
        return self.registers[ENERGY_OBIS].raw + max(0, self._row_count() - 1) * (
            self.energy_per_period)

    def billing_rows(self) -> list[tuple[datetime, int, int]]:
        """(month start, 1.8.0, 2.8.0) for the last `BILLING_MONTHS` month starts up to now:
        1.8.0 as the load profile had it then, or `BILLING_MONTH_WH` less per month before
        the profile's first row."""
        assert self.profile_start_ms is not None
        now = self.now()
        year, month = now.year, now.month
        starts = []
        for _ in range(BILLING_MONTHS):
            starts.append(datetime(year, month, 1, tzinfo=UTC))
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        first = self.profile_start_ms // 1000
        base, export = self.registers[ENERGY_OBIS].raw, self.registers[EXPORT_OBIS].raw
        rows = []
        for when in sorted(starts):
            at = int(when.timestamp())
            if at >= first:
                energy = base + (at - first) // self.capture_period_s * self.energy_per_period
            else:
                energy = base - BILLING_MONTH_WH * sum(1 for s in starts if when <= s
                                                       and int(s.timestamp()) < first)
            rows.append((when, energy, export))
        return rows

    def _billing(self, index: int, access: Access | None) -> Data | int:
        if index == 3:
            return Data(Tag.ARRAY, (capture_data(CLOCK, CLOCK_OBIS, 2),
                                    capture_data(REGISTER, ENERGY_OBIS, 2),
                                    capture_data(REGISTER, EXPORT_OBIS, 2)))
        if index != 2:
            return {7: Data(Tag.DOUBLE_LONG_UNSIGNED, BILLING_MONTHS),
                    8: Data(Tag.DOUBLE_LONG_UNSIGNED, BILLING_MONTHS)}.get(index, OBJECT_UNDEFINED)
        rows = self.billing_rows()
        if access is not None:
            bounds = _range(access.parameters) if access.selector == 1 else None
            if bounds is None:
                return TYPE_UNMATCHED if access.selector == 1 else OTHER_REASON
            rows = [r for r in rows if bounds[0] <= r[0] <= bounds[1]]
        return Data(Tag.ARRAY, tuple(
            Data(Tag.STRUCTURE, (date_time_data(when), Data(Tag.DOUBLE_LONG_UNSIGNED, energy),
                                 Data(Tag.DOUBLE_LONG_UNSIGNED, export)))
            for when, energy, export in rows))

    def _buffer(self, access: Access | None) -> Data | int:
        rows = self.profile_rows()
        if access is not None:
            if access.selector != 1:
                return OTHER_REASON
            bounds = _range(access.parameters)
            if bounds is None:
                return TYPE_UNMATCHED
            rows = [r for r in rows if bounds[0] <= r[0] <= bounds[1]]
        return Data(Tag.ARRAY, tuple(
            Data(Tag.STRUCTURE, (date_time_data(when), Data(Tag.DOUBLE_LONG_UNSIGNED, energy)))
            for when, energy in rows))

    def _profile(self, index: int, access: Access | None) -> Data | int:
        if index == 2:
            return self._buffer(access)
        if index == 3:
            return Data(Tag.ARRAY, (capture_data(CLOCK, CLOCK_OBIS, 2), capture_data(REGISTER,
                                                                            ENERGY_OBIS, 2)))
        if index == 4:
            return Data(Tag.DOUBLE_LONG_UNSIGNED, self.capture_period_s)
        if index == 7:
            return Data(Tag.DOUBLE_LONG_UNSIGNED, len(self.profile_rows()))
        if index == 8:
            return Data(Tag.DOUBLE_LONG_UNSIGNED, MAX_ROWS)
        return OBJECT_UNDEFINED

    # ---- access --------------------------------------------------------------------------
    def get(self, class_id: int, obis: bytes, index: int, access: Access | None) -> Data | int:
        if index == 1:
            return Data(Tag.OCTET_STRING, obis) if self._exists(class_id, obis) else (
                OBJECT_UNDEFINED)
        if class_id == REGISTER and obis == ENERGY_OBIS and index == 2:
            return Data(self.registers[obis].tag, self.energy_now())
        if class_id == REGISTER and obis in self.registers:
            return self.registers[obis].attribute(index)
        if class_id == CLOCK and obis == CLOCK_OBIS:
            return date_time_data(self.now()) if index == 2 else (
                Data(Tag.LONG, 0) if index == 3 else OBJECT_UNDEFINED)
        if class_id == PROFILE_GENERIC and obis == LOAD_PROFILE_OBIS:
            return self._profile(index, access)
        if class_id == PROFILE_GENERIC and obis == BILLING_OBIS:
            return self._billing(index, access)
        if class_id == DISCONNECT_CONTROL and obis == DISCONNECTOR_OBIS:
            return {2: Data(Tag.BOOLEAN, self.output_state),
                    3: Data(Tag.ENUM, self.control_state),
                    4: Data(Tag.ENUM, self.control_mode)}.get(index, OBJECT_UNDEFINED)
        return OBJECT_UNDEFINED

    def _exists(self, class_id: int, obis: bytes) -> bool:
        return ((class_id == REGISTER and obis in self.registers)
                or (class_id, obis) in {(CLOCK, CLOCK_OBIS), (PROFILE_GENERIC, LOAD_PROFILE_OBIS),
                                        (PROFILE_GENERIC, BILLING_OBIS),
                                        (DISCONNECT_CONTROL, DISCONNECTOR_OBIS)})

    def set(self, class_id: int, obis: bytes, index: int, value: Data) -> int:
        if class_id == CLOCK and obis == CLOCK_OBIS and index == 2:
            try:
                when = clock_time(value).utc()
            except FrameError:
                return TYPE_UNMATCHED
            if when is None:
                return TYPE_UNMATCHED
            self.clock_offset_ms = int(when.timestamp() * 1000) - self.wall_ms()
            return 0
        if class_id == DISCONNECT_CONTROL and obis == DISCONNECTOR_OBIS and index == 4:
            if value.tag is not Tag.ENUM or not isinstance(value.value, int) or value.value > 6:
                return TYPE_UNMATCHED
            self.control_mode = value.value
            return 0
        return READ_WRITE_DENIED if self._exists(class_id, obis) else OBJECT_UNDEFINED

    def action(self, class_id: int, obis: bytes, method: int) -> int:
        if class_id != DISCONNECT_CONTROL or obis != DISCONNECTOR_OBIS:
            return OBJECT_UNDEFINED
        if method == REMOTE_DISCONNECT_METHOD:
            self.output_state, self.control_state = False, 0
        elif method == REMOTE_RECONNECT_METHOD:
            self.output_state, self.control_state = True, 1
        else:
            return OBJECT_UNDEFINED
        self.actions.append("disconnect" if method == REMOTE_DISCONNECT_METHOD else "reconnect")
        return 0


def _meter_time(value: Data) -> datetime | None:
    """A range bound: absolute with a deviation, else the meter's local time (UTC here)."""
    when = clock_time(value)
    absolute = when.utc()
    if absolute is not None:
        return absolute
    local = when.local()
    return None if local is None else local.replace(tzinfo=UTC)


def _range(parameters: Data) -> tuple[datetime, datetime] | None:
    items = parameters.value
    if parameters.tag is not Tag.STRUCTURE or not isinstance(items, tuple) or len(items) != 4:
        return None
    try:
        start, end = _meter_time(items[1]), _meter_time(items[2])
    except FrameError:
        return None
    if start is None or end is None:
        return None
    return start, end
