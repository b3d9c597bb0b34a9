"""What type a config key holds, from the config schema, so `config set` reads a typed value.

The gateway's own tables (top level, [storage], [log], [board], [[bus]], [[meter]]) declare
their fields in `gateway.config.loader`; [uplink] is a dataclass whose field types say it. For
the other sections ([prepay], [console]) the value already in the file says it; a new key there
is read as a TOML literal, else as text. The whole file is validated afterwards in any case.
"""

from __future__ import annotations

import dataclasses
import types as pytypes
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.schema import Field
from gateway.config.loader import (
    BOARD_FIELDS,
    LOG_FIELDS,
    METER_COMMON,
    RS485_FIELDS,
    STORAGE_FIELDS,
    TOP_FIELDS,
    bus_fields,
    meter_fields_by_protocol,
)
from gateway.console.config_edit import KeyPart
from uplink.settings import UplinkSettings

_TABLES: dict[tuple[str, ...], Mapping[str, Field]] = {
    (): TOP_FIELDS,
    ("storage",): STORAGE_FIELDS,
    ("log",): LOG_FIELDS,
    ("board",): BOARD_FIELDS,
    ("bus",): bus_fields(),  # the generic keys and every protocol plugin's
    ("bus", "rs485"): RS485_FIELDS,
}


def expected_types(parts: list[KeyPart], current: Mapping[str, Any]) -> tuple[type, ...] | None:
    """The TOML types the key named by `parts` may hold, or None when nothing says."""
    path = tuple(p.name for p in parts[:-1])
    leaf = parts[-1].name
    if path == ("meter",):
        fields: Mapping[str, Field] = _meter_fields(parts[0].index, current)
    elif path == ("uplink",):
        return _uplink_types(leaf) or _existing_type(parts, current)
    else:
        fields = _TABLES.get(path, {})
    spec = fields.get(leaf)
    return spec.types if spec is not None else _existing_type(parts, current)


def _meter_fields(index: int | None, current: Mapping[str, Any]) -> dict[str, Field]:
    meters = current.get("meter", [])
    meter = meters[index] if isinstance(meters, list) and index is not None and \
        index < len(meters) and isinstance(meters[index], dict) else {}
    protocol = meter.get("protocol")
    fields = dict(METER_COMMON)
    by_protocol = meter_fields_by_protocol()
    if protocol in by_protocol:
        fields.update(by_protocol[protocol])
    else:  # a new meter: any protocol's key is allowed until its protocol is set
        for table in by_protocol.values():
            for name, spec in table.items():
                fields.setdefault(name, spec)
    return fields


def _uplink_types(name: str) -> tuple[type, ...] | None:
    hints = typing.get_type_hints(UplinkSettings)
    if name not in {f.name for f in dataclasses.fields(UplinkSettings)}:
        return None
    hint = hints[name]
    members = typing.get_args(hint) if isinstance(hint, pytypes.UnionType) else (hint,)
    found = tuple(str if m is Path else m for m in members if m is not type(None))
    return found or None


def _existing_type(parts: list[KeyPart], current: Mapping[str, Any]) -> tuple[type, ...] | None:
    node: Any = current
    for part in parts:
        node = node.get(part.name) if isinstance(node, Mapping) else None
        if part.index is not None:
            node = node[part.index] if isinstance(node, list) and part.index < len(node) else None
    if node is None or isinstance(node, Mapping):
        return None
    return (type(node),) if type(node) in (str, int, float, bool, list) else None
