"""The `writable` section of a Modbus profile: which holding registers a signed command may
write, their type, range and whether the meter keeps the value so it can be read back."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from core.numbers import OutOfRange, exact_decimal
from drivers.errors import ProfileError
from drivers.modbus.decode import EncodeError, decode_span, encode_span
from drivers.modbus.layout import TYPE_WORDS, WORD_ORDERS, Span
from drivers.modbus.write import MAX_WRITE_WORDS, WriteRequest

_KEYS: Final[frozenset[str]] = frozenset({
    "address", "type", "word_order", "scale", "min", "max", "readback", "multiple", "note",
})
_NAME_CHARS: Final[frozenset[str]] = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
HOLDING: Final[int] = 3  # writes go to holding registers, read back with FC3


@dataclass(frozen=True, slots=True)
class Writable:
    """One writable register: `span` says how the value becomes words, `low`..`high` the
    values a command may ask for (in the register's unit, after scaling)."""

    name: str
    span: Span
    low: Decimal
    high: Decimal
    readback: bool = True  # False: a command register (reset) that reads back as something else
    multiple: bool = False  # FC16 even for one word
    note: str = ""

    def request(self, value: Decimal) -> WriteRequest:
        """The write of `value`; ValueError when it is outside the range or not representable
        in the register's type and scale."""
        if not self.low <= value <= self.high:
            raise ValueError(f"{value} is outside {self.low}..{self.high}")
        try:
            words = encode_span(self.span, value)
        except EncodeError as exc:
            raise ValueError(str(exc)) from None
        if self.span.dtype == "float32" and decode_span(self.span, words) != value:
            raise ValueError(f"{value} has no exact float32 form")
        return WriteRequest(self.span.address, tuple(words), multiple=self.multiple)

    def value_of(self, words: list[int]) -> Decimal | None:
        """The value the meter holds (the read-back), None when it is not available."""
        return decode_span(self.span, words)


def _fail(path: Path, key: str, why: str) -> ProfileError:
    return ProfileError(f"{path.name}: key {key!r}: {why}")


def _bound(path: Path, key: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _fail(path, key, f"must be a decimal string or an integer, got {value!r}")
    try:
        return exact_decimal(str(value))
    except OutOfRange:
        raise _fail(path, key, f"not a decimal number in range: {value!r}") from None


def _flag(path: Path, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, key, "must be true or false")
    return value


def _one(path: Path, name: str, raw: Any, defaults: dict[str, Any]) -> Writable:
    key = f"writable.{name}"
    if not isinstance(raw, dict):
        raise _fail(path, key, "must be an object")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise _fail(path, f"{key}.{unknown[0]}", "unknown key")
    if not name or set(name) - _NAME_CHARS:
        raise _fail(path, key, "a name is lower-case letters, digits and _")
    body = {**defaults, **raw}
    dtype = body.get("type")
    if dtype not in TYPE_WORDS or TYPE_WORDS[dtype] > MAX_WRITE_WORDS:
        raise _fail(path, f"{key}.type", f"must be one of {sorted(TYPE_WORDS)}, got {dtype!r}")
    order = body.get("word_order", "big")
    if order not in WORD_ORDERS:
        raise _fail(path, f"{key}.word_order", f"must be 'big' or 'little', got {order!r}")
    address = body.get("address")
    if isinstance(address, bool) or not isinstance(address, int) \
            or not 0 <= address <= 0x10000 - TYPE_WORDS[dtype]:
        raise _fail(path, f"{key}.address", f"must be a register address, got {address!r}")
    scale = _bound(path, f"{key}.scale", body.get("scale", "1"))
    if scale <= 0:
        raise _fail(path, f"{key}.scale", "must be positive")
    low, high = _bound(path, f"{key}.min", raw.get("min")), _bound(path, f"{key}.max",
                                                                   raw.get("max"))
    if low > high:
        raise _fail(path, f"{key}.min", f"{low} is above max {high}")
    span = Span(HOLDING, address, dtype, order, scale)
    for edge, which in ((low, "min"), (high, "max")):
        try:
            encode_span(span, edge, rounding=True)
        except EncodeError as exc:
            raise _fail(path, f"{key}.{which}", str(exc)) from None
    readback = _flag(path, f"{key}.readback", raw.get("readback", True))
    return Writable(name, span, low, high, readback,
                    _flag(path, f"{key}.multiple", raw.get("multiple", False)),
                    str(raw.get("note", "")))


def find_writable(items: tuple[Writable, ...], register: str) -> Writable | None:
    """The writable register a command names: by name, or by its address (decimal or 0x)."""
    for item in items:
        if item.name == register:
            return item
    try:
        address = int(register, 0)
    except ValueError:
        return None
    return next((item for item in items if item.span.address == address), None)


def parse_writable(path: Path, raw: Any, defaults: dict[str, Any]) -> dict[str, Writable]:
    """The `writable` section (name -> register); absent: nothing may be written."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _fail(path, "writable", "must be an object")
    out = {name: _one(path, name, spec, defaults) for name, spec in raw.items()}
    seen: dict[int, str] = {}
    for item in out.values():
        for addr in range(item.span.address, item.span.address + item.span.words):
            other = seen.setdefault(addr, item.name)
            if other != item.name:
                raise _fail(path, f"writable.{item.name}", f"overlaps {other} at {addr}")
    return out
