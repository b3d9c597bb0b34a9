"""Plain JSON values <-> the console's dataclasses, driven by the type hints of `ControlApi`.

Decimals travel as {"$dec": "230.1"} (exact, and distinct from text values), datetimes and
dates as ISO 8601 strings. Decoding checks every type and raises CodecError naming the field.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from core.errors import MeterGatewayError


class CodecError(MeterGatewayError, ValueError):
    """A value that does not have the declared type; the message names the field path."""


def to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    raise CodecError(f"cannot encode {type(value).__name__}")


def from_plain(tp: Any, value: Any, where: str = "value") -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _union(typing.get_args(tp), value, where)
    if origin is list:
        if not isinstance(value, list):
            raise CodecError(f"{where}: expected a list")
        (item,) = typing.get_args(tp)
        return [from_plain(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return _dataclass(tp, value, where)
    return _scalar(tp, value, where)


def _union(options: tuple[Any, ...], value: Any, where: str) -> Any:
    if value is None and type(None) in options:
        return None
    errors = []
    for option in options:
        if option is type(None):
            continue
        try:
            return from_plain(option, value, where)
        except CodecError as exc:
            errors.append(str(exc))
    raise CodecError("; ".join(errors) or f"{where}: unexpected null")


def _dataclass(tp: Any, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise CodecError(f"{where}: expected an object")
    hints = typing.get_type_hints(tp)
    names = [f.name for f in dataclasses.fields(tp)]
    missing = [n for n in names if n not in value]
    if missing or set(value) - set(names):
        raise CodecError(f"{where}: fields {sorted(value)} do not match {names}")
    return tp(**{n: from_plain(hints[n], value[n], f"{where}.{n}") for n in names})


def _scalar(tp: Any, value: Any, where: str) -> Any:
    if tp is Decimal:
        if not (isinstance(value, dict) and len(value) == 1 and isinstance(value.get("$dec"), str)):
            raise CodecError(f"{where}: expected a decimal {{\"$dec\": \"...\"}}")
        try:
            return Decimal(value["$dec"])
        except InvalidOperation:
            raise CodecError(f"{where}: {value['$dec']!r} is not a decimal") from None
    if tp in (datetime, date):
        if not isinstance(value, str):
            raise CodecError(f"{where}: expected an ISO 8601 string")
        try:
            parsed = tp.fromisoformat(value)
        except ValueError:
            raise CodecError(f"{where}: {value[:40]!r} is not ISO 8601") from None
        if tp is date and isinstance(parsed, datetime):
            raise CodecError(f"{where}: expected a date, got a time")
        return parsed
    if tp is int and isinstance(value, bool):
        raise CodecError(f"{where}: expected int")
    if tp in (str, int, bool) and isinstance(value, tp):
        return value
    if tp is type(None) and value is None:
        return None
    raise CodecError(f"{where}: expected {getattr(tp, '__name__', tp)}")
