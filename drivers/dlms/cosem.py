"""COSEM interface classes the gateway reads (IEC 62056-6-2): register, extended and demand
register (value and scaler_unit -> exact value with unit), clock, profile generic (capture
objects + buffer rows -> dated readings) and disconnect control states.

`ObjectValue` is one decoded value, JSON-able, with the OBIS code in the DLMS form
`A-B:C.D.E.F`; the shared OBIS map (drivers/obis) names its quantity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, DecimalException, localcontext
from typing import Final

from core.numbers import BOUNDED
from drivers.dlms.axdr import BitString, Data, Tag
from drivers.dlms.timefields import CosemDateTime, decode_date_time
from drivers.errors import FrameError
from drivers.obis.codes import ObisCode

# interface class ids
REGISTER: Final = 3
EXTENDED_REGISTER: Final = 4
DEMAND_REGISTER: Final = 5
PROFILE_GENERIC: Final = 7
CLOCK: Final = 8
DISCONNECT_CONTROL: Final = 70
CLOCK_TIME_ATTRIBUTE: Final = 2
_ONE: Final = Decimal(1)
MAX_SCALER: Final = 30  # |scaler| beyond this is no physical register (and no Decimal bound)

# IEC 62056-6-2 unit enumeration -> the unit text the gateway uses (drivers/obis/units.py)
UNITS: Final[dict[int, str]] = {
    1: "a", 2: "mo", 3: "wk", 4: "d", 5: "h", 6: "min", 7: "s", 8: "°", 9: "C",
    10: "currency", 11: "m", 12: "m/s", 13: "m3", 14: "m3", 15: "m3/h", 16: "m3/h",
    17: "m3/d", 18: "m3/d", 19: "l", 20: "kg", 21: "N", 22: "Nm", 23: "Pa", 24: "bar", 25: "J",
    26: "J/h", 27: "W", 28: "VA", 29: "var", 30: "Wh", 31: "VAh", 32: "varh", 33: "A", 34: "C",
    35: "V", 36: "V/m", 37: "F", 38: "Ohm", 39: "Ohm m2/m", 40: "Wb", 41: "T", 42: "A/m",
    43: "H", 44: "Hz", 45: "1/(Wh)", 46: "1/(varh)", 47: "1/(VAh)", 48: "V2h", 49: "A2h",
    50: "kg/s", 51: "S", 52: "K", 53: "1/(V2h)", 54: "1/(A2h)", 55: "1/m3", 56: "%",
    57: "Ah", 60: "Wh/m3", 61: "J/m3", 62: "mol%", 63: "g/m3", 64: "Pa s", 65: "J/kg",
    70: "dBm", 71: "dBuV", 72: "dB",
}
NO_UNIT: Final = (253, 254, 255)  # reserved, other, count

DISCONNECT_STATES: Final = {0: "disconnected", 1: "connected", 2: "ready_for_reconnection"}
DISCONNECT_MODES: Final = tuple(range(7))
REMOTE_DISCONNECT_METHOD: Final = 1
REMOTE_RECONNECT_METHOD: Final = 2


def obis_from_bytes(raw: bytes) -> ObisCode:
    if len(raw) != 6:
        raise FrameError(f"a logical name is 6 bytes, not {len(raw)}", 0)
    a, b, c, d, e, f = (str(x) for x in raw)
    return ObisCode(a, b, c, d, e, f)


def obis_text(raw: bytes) -> str:
    return obis_from_bytes(raw).text(dotted_f=True)


def obis_bytes(text: str) -> bytes:
    """`1-0:1.8.0.255` -> 6 bytes (for requests and profiles)."""
    head, _, tail = text.partition(":")
    parts = [*head.split("-"), *tail.split(".")]
    if len(parts) != 6 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise ValueError(f"{text!r} is not an OBIS code A-B:C.D.E.F")
    return bytes(int(p) for p in parts)


@dataclass(frozen=True, slots=True)
class ScalerUnit:
    scaler: int
    unit: str | None  # None: a count or no unit

    @classmethod
    def from_data(cls, data: Data) -> ScalerUnit:
        items = data.value
        if (data.tag is not Tag.STRUCTURE or not isinstance(items, tuple) or len(items) != 2
                or items[0].tag is not Tag.INTEGER or items[1].tag is not Tag.ENUM):
            raise FrameError("scaler_unit is not structure {integer, enum}", 0)
        scaler, unit = items[0].value, items[1].value
        assert isinstance(scaler, int) and isinstance(unit, int)
        if unit not in UNITS and unit not in NO_UNIT:
            raise FrameError(f"unit enumeration {unit} is not defined", 0)
        return cls(scaler, UNITS.get(unit))


@dataclass(frozen=True, slots=True)
class ObjectValue:
    """One value of one object: exact number (or text, or time), unit, the scaler applied."""

    obis: str
    value: Decimal | str | bool | None
    unit: str | None = None
    scaler: int | None = None
    captured: str | None = None  # a time the meter gives for this value (capture_time, row)

    def to_json(self) -> dict[str, object]:
        value = self.value if isinstance(self.value, bool | None) else str(self.value)
        out: dict[str, object] = {"obis": self.obis, "value": value, "unit": self.unit,
                                  "scaler": self.scaler}
        if self.captured is not None:
            out["captured"] = self.captured
        return out


def scaled(raw: int | Decimal, scaler: int) -> Decimal:
    """`raw` x 10^scaler exactly (never float), bounded; FrameError when out of range."""
    if abs(scaler) > MAX_SCALER:
        raise FrameError(f"scaler {scaler} is beyond ±{MAX_SCALER}", 0)
    try:
        with localcontext(BOUNDED):
            value = Decimal(raw).scaleb(scaler)
            # 1517 x 10^1 is 1.517E+1 to Decimal; keep the plain integer 15170 instead
            exponent = value.as_tuple().exponent
            return value.quantize(_ONE) if isinstance(exponent, int) and exponent > 0 else +value
    except DecimalException:
        raise FrameError(f"{raw} x 10^{scaler} does not fit the bounded context", 0) from None


def plain_value(data: Data) -> Decimal | str | bool | None:
    """A Data value as the gateway keeps it: numbers exact, strings as text, octet strings
    that are a date-time as ISO text, other octet strings as upper-case hex."""
    value = data.value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | Decimal):
        if isinstance(value, Decimal) and not value.is_finite():
            raise FrameError(f"{data.tag.name} value {value} is not a number", 0)
        return scaled(value, 0)
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return _octets_text(value)
    if isinstance(value, CosemDateTime):
        return value.text()
    if isinstance(value, BitString):
        return value.bits
    if hasattr(value, "text"):
        return str(value.text())  # date, time
    raise FrameError(f"{data.tag.name} is not a single value", 0)


def _octets_text(raw: bytes) -> str:
    if len(raw) == 12:
        try:
            return decode_date_time(raw).text()
        except FrameError:
            pass
    if raw and all(0x20 <= b < 0x7F for b in raw):
        return raw.decode("ascii")  # meter ids, list versions, types: printable by design
    return raw.hex().upper()


def register_value(obis: str, value: Data, scaler_unit: ScalerUnit | None,
                   capture_time: Data | None = None) -> ObjectValue:
    """Register / extended register attribute 2 (demand register attributes 2 and 3) with
    its scaler_unit: the exact value; an extended or demand register's capture_time
    (attribute 5 / 6) goes with it when given."""
    plain = plain_value(value)
    captured = None if capture_time is None or capture_time.tag is Tag.NULL else (
        clock_time(capture_time).text())
    if scaler_unit is None or not isinstance(plain, Decimal):
        return ObjectValue(obis, plain, captured=captured)
    return ObjectValue(obis, scaled(plain, scaler_unit.scaler), scaler_unit.unit,
                       scaler_unit.scaler, captured)


def clock_time(value: Data) -> CosemDateTime:
    """Clock attribute 2: a date-time (octet string of 12, or the date-time type)."""
    if isinstance(value.value, CosemDateTime):
        return value.value
    if isinstance(value.value, bytes):
        return decode_date_time(value.value)
    raise FrameError(f"clock time is a {value.tag.name}, not a date-time", 0)


def disconnect_state(value: Data) -> str:
    """Disconnect control attribute 3 (control_state) by its standard name."""
    if value.tag is not Tag.ENUM or value.value not in DISCONNECT_STATES:
        raise FrameError(f"control_state {value.value!r} is not 0, 1 or 2", 0)
    assert isinstance(value.value, int)
    return DISCONNECT_STATES[value.value]


@dataclass(frozen=True, slots=True)
class CaptureObject:
    class_id: int
    obis: str
    attribute: int
    data_index: int = 0

    @classmethod
    def from_data(cls, data: Data) -> CaptureObject:
        items = data.value
        if not (isinstance(items, tuple) and len(items) == 4
                and isinstance(items[1].value, bytes)):
            raise FrameError("capture object is not {class, logical name, attribute, index}", 0)
        class_id, attribute, index = items[0].value, items[2].value, items[3].value
        if not all(isinstance(x, int) and not isinstance(x, bool)
                   for x in (class_id, attribute, index)):
            raise FrameError("capture object fields are not integers", 0)
        assert isinstance(class_id, int) and isinstance(attribute, int)
        assert isinstance(index, int)
        return cls(class_id, obis_text(items[1].value), attribute, index)


@dataclass(frozen=True, slots=True)
class ProfileRow:
    when: datetime | None  # the row's clock column, local time of the meter
    when_text: str | None
    values: tuple[ObjectValue, ...]


def profile_rows(capture: list[CaptureObject], buffer: Data,
                 scalers: dict[str, ScalerUnit]) -> list[ProfileRow]:
    """Profile generic buffer rows -> dated values; `scalers` by OBIS (read from each
    register's attribute 3, or a profile's table). A null cell (compressed buffers leave
    unchanged values out) stays None."""
    if buffer.tag is not Tag.ARRAY or not isinstance(buffer.value, tuple):
        raise FrameError("profile buffer is not an array", 0)
    rows = []
    for row in buffer.value:
        if not isinstance(row.value, tuple) or len(row.value) != len(capture):
            raise FrameError(f"profile row of {row.value!r:.40} for {len(capture)} columns", 0)
        rows.append(_profile_row(capture, row.value, scalers))
    return rows


def _profile_row(capture: list[CaptureObject], cells: tuple[Data, ...],
                 scalers: dict[str, ScalerUnit]) -> ProfileRow:
    when: CosemDateTime | None = None
    values = []
    for column, cell in zip(capture, cells, strict=True):
        if column.class_id == CLOCK and column.attribute == CLOCK_TIME_ATTRIBUTE:
            when = None if cell.tag is Tag.NULL else clock_time(cell)
            continue
        values.append(register_value(column.obis, cell, scalers.get(column.obis)))
    stamp = None if when is None else when.text()
    rows = tuple(ObjectValue(v.obis, v.value, v.unit, v.scaler, stamp) for v in values)
    return ProfileRow(None if when is None else when.local(), stamp, rows)
