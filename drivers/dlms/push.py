"""HAN push lists (data-notification bodies) -> `ObjectValue`s, and values -> gateway samples.

Meters lay a push out three ways, and the meter profiles (`profiles/*.json`, data) say which:
- `self_describing` (Aidon, most DLMS UA push setups): elements `{logical name, value
  [, scaler_unit]}`;
- `obis_value_pairs` (Kamstrup): a list id, then logical name and value in turn, no scalers;
- `positional` (Kaifa): bare values whose meaning is their position in the numbered list, the
  list id first (the one-value list 1 has none).
Scalers a meter does not send come from its profile, keyed by the code's C.D.E.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Final

from core.numbers import OutOfRange
from core.quantities import QUANTITIES, base_name
from drivers.dlms.axdr import Data, Tag
from drivers.dlms.cosem import ObjectValue, ScalerUnit, obis_text, register_value
from drivers.errors import FrameError, ProfileError
from drivers.obis.codes import parse_code
from drivers.obis.tables import ABSTRACT, ELECTRICITY, CodeKey
from drivers.obis.units import scale_to
from drivers.readings import Sample

PROFILE_DIR: Final = Path(__file__).resolve().parent / "profiles"
LAYOUTS: Final = ("self_describing", "obis_value_pairs", "positional")
LOGICAL_NAME_BYTES: Final = 6
# DLMS codes the shared table does not name (IEC 62056-21 readouts do not carry them)
DLMS_ABSTRACT: Final[dict[CodeKey, str]] = {("96", "1", "0"): "serial_number",
                                             ("1", "0", "0"): "meter_datetime"}
OWN_CHANNELS: Final = ("0", "1")  # B = 1 is the meter itself on Kamstrup / Aidon lists


@dataclass(frozen=True, slots=True)
class MeterProfile:
    name: str
    make: str
    layout: str
    list_ids: tuple[str, ...]
    lists: dict[int, tuple[str, ...]]  # positional: element count -> OBIS per position
    scalers: dict[str, ScalerUnit]  # "C.D.E" -> scaler and unit


def _profile(name: str, raw: dict[str, Any]) -> MeterProfile:
    try:
        layout = raw["layout"]
        if layout not in LAYOUTS:
            raise ProfileError(f"profile {name}: layout {layout!r} is not one of {LAYOUTS}")
        lists = {int(k): tuple(v) for k, v in raw.get("lists", {}).items()}
        scalers = {k: ScalerUnit(int(v[0]), v[1]) for k, v in raw.get("scalers", {}).items()}
        return MeterProfile(name, raw["make"], layout, tuple(raw.get("list_ids", ())), lists,
                            scalers)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise ProfileError(f"profile {name}: {error!r}") from None


@cache
def profiles() -> dict[str, MeterProfile]:
    """Every meter profile shipped, by file name (`kaifa`, `kamstrup`, `aidon`)."""
    out = {}
    for path in sorted(PROFILE_DIR.glob("*.json")):
        out[path.stem] = _profile(path.stem, json.loads(path.read_text(encoding="utf-8")))
    return out


def _list_id(first: Data) -> str | None:
    if first.tag in (Tag.OCTET_STRING, Tag.VISIBLE_STRING) and isinstance(
            first.value, bytes | str):
        text = first.value if isinstance(first.value, str) else first.value.decode("latin-1")
        return text if len(first.value) != LOGICAL_NAME_BYTES else None
    return None


def _elements(body: Data) -> tuple[Data, ...]:
    if body.tag not in (Tag.STRUCTURE, Tag.ARRAY) or not isinstance(body.value, tuple):
        raise FrameError(f"notification body is a {body.tag.name}, not a list", 0)
    return body.value


def _is_logical_name(item: Data) -> bool:
    return item.tag is Tag.OCTET_STRING and isinstance(item.value, bytes) and len(
        item.value) == LOGICAL_NAME_BYTES


def choose_profile(body: Data, name: str | None = None) -> MeterProfile | None:
    """The profile named, else the one whose list id the body starts with, else the one
    positional profile with a list of this length (Kaifa's list 1 has no id)."""
    known = profiles()
    if name is not None:
        if name not in known:
            raise ProfileError(f"no DLMS meter profile {name!r} (have {sorted(known)})")
        return known[name]
    if body.tag not in (Tag.STRUCTURE, Tag.ARRAY):
        return None
    items = _elements(body)
    first = items[0] if items else None
    if first is not None and first.tag is Tag.STRUCTURE and isinstance(first.value, tuple):
        first = first.value[-1] if len(first.value) == 2 else first  # Aidon: {name, id}
    list_id = None if first is None else _list_id(first)
    for profile in known.values():
        if list_id is not None and list_id in profile.list_ids:
            return profile
    fits = [p for p in known.values() if p.layout == "positional" and len(items) in p.lists]
    return fits[0] if len(fits) == 1 and list_id is None else None


def push_objects(body: Data, profile: MeterProfile | None) -> list[ObjectValue]:
    """The values a push carries, each with its OBIS code, exact value and unit; none for a
    body that is not a list (a manufacturer's own octet string)."""
    if body.tag not in (Tag.STRUCTURE, Tag.ARRAY):
        return []
    items = _elements(body)
    if all(i.tag is Tag.STRUCTURE and isinstance(i.value, tuple) and i.value
           and _is_logical_name(i.value[0]) for i in items) and items:
        return [_described(i, profile) for i in items]
    if profile is None:
        raise FrameError(f"a list of {len(items)} values without logical names needs the "
                         "meter's profile", 0)
    if profile.layout == "obis_value_pairs":
        return _pairs(items, profile)
    return _positional(items, profile)


def _scaler(obis: str, profile: MeterProfile | None) -> ScalerUnit | None:
    if profile is None:
        return None
    code = parse_code(obis)
    return None if code is None else profile.scalers.get(".".join(code.cde))


def _described(item: Data, profile: MeterProfile | None) -> ObjectValue:
    parts = item.value
    assert isinstance(parts, tuple) and isinstance(parts[0].value, bytes)
    obis = obis_text(parts[0].value)
    if len(parts) == 1:
        return ObjectValue(obis, None)
    unit = ScalerUnit.from_data(parts[2]) if len(parts) >= 3 else _scaler(obis, profile)
    return register_value(obis, parts[1], unit)


def _pairs(items: tuple[Data, ...], profile: MeterProfile) -> list[ObjectValue]:
    start = 0 if items and _is_logical_name(items[0]) else 1
    if (len(items) - start) % 2:
        raise FrameError(f"{len(items) - start} items after the list id are not pairs", 0)
    out = []
    if start:
        out.append(register_value("1-1:0.2.129.255", items[0], None))
    for name, value in zip(items[start::2], items[start + 1::2], strict=True):
        if not _is_logical_name(name):
            raise FrameError("a pair does not start with a logical name", 0)
        assert isinstance(name.value, bytes)
        obis = obis_text(name.value)
        out.append(register_value(obis, value, _scaler(obis, profile)))
    return out


def _positional(items: tuple[Data, ...], profile: MeterProfile) -> list[ObjectValue]:
    codes = profile.lists.get(len(items))
    if codes is None:
        raise FrameError(f"{profile.make} has no list of {len(items)} values "
                         f"(known: {sorted(profile.lists)})", 0)
    return [register_value(obis, value, _scaler(obis, profile))
            for obis, value in zip(codes, items, strict=True)]


def _quantity(obis: str) -> str | None:
    code = parse_code(obis)
    if code is None or not code.current or code.b not in OWN_CHANNELS:
        return None
    if code.a == "1":
        return ELECTRICITY.get(code.cde)
    if code.a == "0":
        return DLMS_ABSTRACT.get(code.cde) or ABSTRACT.get(code.cde)
    return None


def samples(objects: list[ObjectValue]) -> list[Sample]:
    """The values the gateway has a quantity for, in that quantity's unit, exact."""
    out = []
    for obj in objects:
        quantity = _quantity(obj.obis)
        if quantity is None or obj.value is None or isinstance(obj.value, bool):
            continue
        canonical = QUANTITIES[base_name(quantity)]
        if not canonical:  # a text quantity (serial number, meter time): a number as text
            out.append(Sample(quantity, str(obj.value), canonical))
            continue
        if isinstance(obj.value, str):
            raise FrameError(f"{obj.obis} ({quantity}) is {obj.value!r:.40}, not a number", 0)
        value = _in_unit(obj.value, obj.unit, canonical)
        if value is not None:
            out.append(Sample(quantity, value, canonical))
    return out


def _in_unit(value: Decimal, unit: str | None, canonical: str) -> Decimal | None:
    if unit is None:
        return None  # a number without a unit is not a reading (never a guess)
    try:
        return scale_to(value, unit, canonical)
    except OutOfRange as error:
        raise FrameError(str(error), 0) from None
