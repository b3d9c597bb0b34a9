"""Meter register maps as data: loads and validates `profiles/*.json` into typed `Profile`s."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Final

from core.numbers import OutOfRange, exact_decimal
from core.quantities import QUANTITIES, base_name, is_known
from drivers.errors import ProfileError
from drivers.modbus.layout import TYPE_WORDS, WORD_ORDERS, Register, Span
from drivers.modbus.writable import parse_writable

PROFILE_DIR: Final[Path] = Path(__file__).with_name("profiles")

RATIOS: Final[frozenset[str]] = frozenset({"ct", "vt", "ct*vt"})
READ_FUNCTIONS: Final[frozenset[int]] = frozenset({3, 4})
# Modbus application protocol v1.1b3, 6.3/6.4: at most 125 registers in one read.
MODBUS_MAX_READ: Final[int] = 125
PARITIES: Final[frozenset[str]] = frozenset({"N", "E", "O"})

_PROFILE_KEYS: Final[frozenset[str]] = frozenset({
    "maker", "model", "source", "notes", "function", "max_registers", "even_aligned", "max_gap",
    "inter_request_gap_s", "serial", "default_address", "register_defaults", "registers",
    "writable",
})
_REGISTER_KEYS: Final[frozenset[str]] = frozenset({
    "address", "function", "type", "word_order", "scale", "unit", "ratio", "note", "parts",
})
_PART_KEYS: Final[frozenset[str]] = frozenset({"address", "type", "word_order", "scale", "note"})
_SERIAL_KEYS: Final[frozenset[str]] = frozenset({"baudrate", "bytesize", "parity", "stopbits"})


@dataclass(frozen=True, slots=True)
class SerialDefaults:
    """Factory line settings of a meter (None where the maker's manual is silent)."""

    baudrate: int | None = None
    bytesize: int | None = None
    parity: str | None = None
    stopbits: int | None = None


@dataclass(frozen=True)
class Profile:
    """A meter model's register map and its bus quirks."""

    name: str
    maker: str
    model: str
    source: str
    registers: tuple[Register, ...]
    max_registers: int
    even_aligned: bool = False
    max_gap: int = 0
    inter_request_gap_s: Decimal = Decimal(0)
    serial: SerialDefaults = field(default_factory=SerialDefaults)
    default_address: int | None = None
    # drivers.modbus.writable.Writable: what a signed command may write (none: nothing)
    writable: tuple[Any, ...] = ()

    @property
    def needs_ratios(self) -> bool:
        """True when some values are secondary-side and must be multiplied by CT / VT ratios."""
        return any(reg.ratio for reg in self.registers)

    @property
    def quantities(self) -> list[str]:
        return [reg.quantity for reg in self.registers]


def _fail(path: Path, key: str, why: str) -> ProfileError:
    return ProfileError(f"{path.name}: key {key!r}: {why}")


def _check_keys(path: Path, where: str, data: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _fail(path, f"{where}{unknown[0]}", "unknown key")


def _int(path: Path, key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(path, key, f"must be an integer in {low}..{high}, got {value!r}")
    return value


def _decimal(path: Path, key: str, value: Any) -> Decimal:
    # Floats are refused on purpose: "0.1" as a JSON number is already inexact to the parser.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _fail(path, key, f"must be a decimal string like '0.1' or an integer, got {value!r}")
    try:
        # bounded like every number from outside: a scale of 1E+999999 is refused here, once
        result = exact_decimal(str(value))
    except OutOfRange:
        raise _fail(path, key, f"not a decimal number in range: {value!r}") from None
    if result <= 0:
        raise _fail(path, key, f"must be a positive finite decimal, got {value!r}")
    return result


def _span(path: Path, key: str, raw: dict[str, Any], function: int) -> Span:
    _check_keys(path, f"{key}.", raw, _PART_KEYS | {"function"})
    dtype = raw.get("type")
    if dtype not in TYPE_WORDS:
        raise _fail(path, f"{key}.type", f"must be one of {sorted(TYPE_WORDS)}, got {dtype!r}")
    order = raw.get("word_order", "big")
    if order not in WORD_ORDERS:
        raise _fail(path, f"{key}.word_order", f"must be 'big' or 'little', got {order!r}")
    fn = _int(path, f"{key}.function", raw.get("function", function), 3, 4)
    address = _int(path, f"{key}.address", raw.get("address"), 0, 0xFFFF - TYPE_WORDS[dtype] + 1)
    return Span(fn, address, dtype, order, _decimal(path, f"{key}.scale", raw.get("scale", "1")))


def _register(
    path: Path, quantity: str, raw: Any, defaults: dict[str, Any], function: int
) -> Register:
    key = f"registers.{quantity}"
    if not isinstance(raw, dict):
        raise _fail(path, key, "must be an object")
    _check_keys(path, f"{key}.", raw, _REGISTER_KEYS)
    if not is_known(quantity):
        raise _fail(path, key, "not a quantity name from core/quantities.py")
    canonical = QUANTITIES[base_name(quantity)]
    unit = raw.get("unit", canonical)
    if unit != canonical:
        raise _fail(path, f"{key}.unit", f"must be {canonical!r} after scaling, got {unit!r}")
    ratio = raw.get("ratio")
    if ratio is not None and ratio not in RATIOS:
        raise _fail(path, f"{key}.ratio", f"must be one of {sorted(RATIOS)}, got {ratio!r}")
    fn = raw.get("function", function)
    if "parts" in raw:
        parts = raw["parts"]
        if not isinstance(parts, list) or not parts:
            raise _fail(path, f"{key}.parts", "must be a non-empty list")
        spans = tuple(
            _span(path, f"{key}.parts[{i}]", {**defaults, "function": fn, **part}, fn)
            for i, part in enumerate(parts)
        )
    else:
        body = {k: v for k, v in raw.items() if k in _PART_KEYS | {"function"}}
        spans = (_span(path, key, {**defaults, **body}, fn),)
    return Register(quantity, unit, spans, ratio)


def _serial(path: Path, raw: Any) -> SerialDefaults:
    if raw is None:
        return SerialDefaults()
    if not isinstance(raw, dict):
        raise _fail(path, "serial", "must be an object")
    _check_keys(path, "serial.", raw, _SERIAL_KEYS)
    parity = raw.get("parity")
    if parity is not None and parity not in PARITIES:
        raise _fail(path, "serial.parity", f"must be N, E or O, got {parity!r}")
    baud, size, stop = raw.get("baudrate"), raw.get("bytesize"), raw.get("stopbits")
    return SerialDefaults(
        baudrate=None if baud is None else _int(path, "serial.baudrate", baud, 300, 921600),
        bytesize=None if size is None else _int(path, "serial.bytesize", size, 7, 8),
        parity=parity,
        stopbits=None if stop is None else _int(path, "serial.stopbits", stop, 1, 2),
    )


def _check_layout(path: Path, profile: Profile) -> None:
    seen: dict[tuple[int, int], str] = {}
    for reg in profile.registers:
        for span in reg.spans:
            for addr in range(span.address, span.address + span.words):
                other = seen.setdefault((span.function, addr), reg.quantity)
                if other != reg.quantity:
                    raise _fail(path, f"registers.{reg.quantity}", f"overlaps {other} at {addr}")
            if profile.even_aligned and (span.address % 2 or span.words % 2):
                raise _fail(path, f"registers.{reg.quantity}",
                            "even_aligned profile needs even addresses and 32/64-bit types")
            if span.words > profile.max_registers:
                raise _fail(path, f"registers.{reg.quantity}", "wider than max_registers")


def parse_profile(path: Path, data: Any) -> Profile:
    """Validate one decoded profile document; `path` names it in errors."""
    if not isinstance(data, dict):
        raise _fail(path, "(top)", "must be a JSON object")
    _check_keys(path, "", data, _PROFILE_KEYS)
    for key in ("maker", "model", "source"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise _fail(path, key, "must be a non-empty string")
    function = _int(path, "function", data.get("function"), 3, 4)
    defaults = data.get("register_defaults", {})
    if not isinstance(defaults, dict):
        raise _fail(path, "register_defaults", "must be an object")
    _check_keys(path, "register_defaults.", defaults, _PART_KEYS - {"address", "note"})
    registers = data.get("registers")
    if not isinstance(registers, dict) or not registers:
        raise _fail(path, "registers", "must be a non-empty object")
    even = data.get("even_aligned", False)
    if not isinstance(even, bool):
        raise _fail(path, "even_aligned", "must be true or false")
    max_registers = _int(path, "max_registers", data.get("max_registers"), 1, MODBUS_MAX_READ)
    if even and max_registers % 2:
        raise _fail(path, "max_registers", "must be even for an even_aligned profile")
    address = data.get("default_address")
    profile = Profile(
        name=path.stem, maker=data["maker"], model=data["model"], source=data["source"],
        registers=tuple(_register(path, q, r, defaults, function) for q, r in registers.items()),
        max_registers=max_registers,
        even_aligned=even,
        max_gap=_int(path, "max_gap", data.get("max_gap", 0), 0, MODBUS_MAX_READ),
        inter_request_gap_s=_gap(path, data.get("inter_request_gap_s", "0")),
        serial=_serial(path, data.get("serial")),
        default_address=None if address is None else _int(path, "default_address", address, 1, 247),
        writable=tuple(parse_writable(path, data.get("writable"), {
            k: v for k, v in defaults.items() if k in ("type", "word_order")}).values()),
    )
    _check_layout(path, profile)
    return profile


def _gap(path: Path, value: Any) -> Decimal:
    if value in ("0", 0):
        return Decimal(0)
    return _decimal(path, "inter_request_gap_s", value)


def load_profile_file(path: Path) -> Profile:
    """Read and validate one profile file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc.strerror}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path.name}: not valid JSON: {exc}") from exc
    return parse_profile(path, data)


def load_profiles(directory: Path | None = None) -> dict[str, Profile]:
    """All profiles of a directory (default: the bundled ones), keyed by file stem."""
    if directory is None:
        return dict(_bundled())
    return {p.stem: load_profile_file(p) for p in sorted(directory.glob("*.json"))}


@cache
def _bundled() -> dict[str, Profile]:
    return load_profiles(PROFILE_DIR)


def get_profile(name: str) -> Profile:
    """The bundled profile `name`; ProfileError listing the known names otherwise."""
    profiles = _bundled()
    if name not in profiles:
        raise ProfileError(f"unknown Modbus profile {name!r}; known: {', '.join(sorted(profiles))}")
    return profiles[name]


def profile_names() -> list[str]:
    """Names of the bundled profiles, sorted."""
    return sorted(_bundled())
