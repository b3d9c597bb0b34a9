"""`config set KEY VALUE` on the TOML text: change one key, keep every other line and comment.

Keys are dotted: "key", "section.key", "section.sub.key", or "table[INDEX].key" for an array of
tables ("meter[2].address" is the third [[meter]]; "bus[0].rs485.enabled" a table inside one).
A missing table is added; "meter[N]" with N equal to the number of meters adds a new [[meter]].

VALUE is typed as a technician would type it: the key's expected types (from the config schema,
see `gateway.console.config_keys`) say what it is, so `3.00` for a text key is the text "3.00",
`debug` is a string, `yes`/`no` a boolean. Quotes are accepted and not required. Where the type
is unknown the value is read as a TOML literal, else as text. tomlkit keeps comments and layout;
the result is re-parsed and compared with the original so that nothing but the one key changed.
The caller validates the whole config and writes it with `accounts.atomic_write`.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from typing import Any

from core.errors import MeterGatewayError

_PART = re.compile(r"^(?P<name>[A-Za-z0-9_-]+)(\[(?P<index>\d{1,4})\])?$")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_TYPE_NAMES = {str: "text", int: "a whole number", float: "a number", bool: "true or false",
               list: "a TOML array like [1, 2]", dict: "a TOML table like {a = 1}"}


class ConfigEditError(MeterGatewayError, ValueError):
    """The key or value cannot be set; the message names it and says what to do."""


@dataclass(frozen=True, slots=True)
class KeyPart:
    name: str
    index: int | None  # position in an array of tables, None for a plain table or key


def parse_key(key: str) -> list[KeyPart]:
    """The parts of a dotted key, or ConfigEditError naming what is wrong with it."""
    parts = []
    for text in key.split("."):
        match = _PART.match(text)
        if match is None:
            raise ConfigEditError(f"{key!r} is not a key like uplink.host or meter[0].address")
        index = match["index"]
        parts.append(KeyPart(match["name"], None if index is None else int(index)))
    if parts[-1].index is not None:
        raise ConfigEditError(f"{key}: name a key inside the table, e.g. {key}.id")
    return parts


def typed_value(typed: str, types: tuple[type, ...] | None, key: str) -> Any:
    """The value a technician meant by `typed`, for a key whose schema allows `types`."""
    if "\n" in typed or "\r" in typed:
        raise ConfigEditError(f"{key}: the value must be one line")
    text = typed.strip()
    if types is None:
        literal = _toml_literal(text)
        return text if literal is None else literal
    for kind in sorted(types, key=_try_order):
        value = _as(kind, text)
        if value is not None:
            return value
    wanted = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
    raise ConfigEditError(f"{key}: {typed!r} is not {wanted}")


def _try_order(kind: type) -> int:
    # bool before int (TOML has no 0/1 booleans, but a technician may type yes), text last.
    return {bool: 0, int: 1, float: 2, list: 3, dict: 4}.get(kind, 9)


def _as(kind: type, text: str) -> Any:
    low = text.lower()
    if kind is bool:
        return True if low in _TRUE else False if low in _FALSE else None
    if kind is int:
        return int(text) if re.fullmatch(r"[+-]?\d{1,19}", text) else None
    if kind is float:
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    if kind in (list, dict):
        literal = _toml_literal(text)
        return literal if isinstance(literal, kind) else None
    if kind is str:
        return _unquoted(text)
    return None


def _unquoted(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        literal = _toml_literal(text)
        if isinstance(literal, str):
            return literal
    return text


def _toml_literal(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return None


def set_value(text: str, key: str, value: Any) -> str:
    """Return `text` with `key` set to `value` (tables and keys added where missing)."""
    # tomlkit costs about 3 MB of RSS: imported when a technician sets a key, not by every
    # `gateway run` that wires the console.
    import tomlkit
    from tomlkit.exceptions import TOMLKitError
    from tomlkit.items import AoT, Table

    parts = parse_key(key)
    try:
        doc = tomlkit.parse(text)
        before = tomllib.loads(text)
    except (TOMLKitError, tomllib.TOMLDecodeError) as exc:
        raise ConfigEditError(f"the config does not parse ({exc}); fix it by hand first") from exc
    container: Any = doc
    for depth, part in enumerate(parts[:-1]):
        container = _child_table(container, part, ".".join(p.name for p in parts[: depth + 1]))
    leaf = parts[-1].name
    if isinstance(container.get(leaf), (Table, AoT)):
        raise ConfigEditError(f"{key} is a table; set one of its keys")
    container[leaf] = value
    new_text = tomlkit.dumps(doc)
    _check_only_key_changed(before, new_text, parts, value)
    return new_text


def _child_table(container: Any, part: KeyPart, where: str) -> Any:
    import tomlkit
    from tomlkit.items import AoT, Table

    existing = container.get(part.name)
    if part.index is None:
        if existing is None:
            container[part.name] = tomlkit.table()
            return container[part.name]
        if not isinstance(existing, (Table, dict)) or isinstance(existing, AoT):
            raise ConfigEditError(f"{where} is not a table (use {where}[N] for an array)")
        return existing
    if existing is None:
        existing = tomlkit.aot()
        container[part.name] = existing
    if not isinstance(existing, AoT):
        raise ConfigEditError(f"{where} is not an array of tables [[{part.name}]]")
    if part.index == len(existing):
        existing.append(tomlkit.table())  # one past the end adds a new [[table]]
    elif part.index > len(existing):
        raise ConfigEditError(f"{where}[{part.index}]: there are only {len(existing)} "
                              f"[[{part.name}]] tables (the next one is [{len(existing)}])")
    return existing[part.index]


def _check_only_key_changed(before: dict[str, Any], new_text: str, parts: list[KeyPart],
                            value: Any) -> None:
    after = tomllib.loads(new_text)
    if _pop(after, parts) != value:
        raise ConfigEditError(f"{_dotted(parts)}: could not be set; edit the file by hand")
    _pop(before, parts)
    _prune_empty(after)
    _prune_empty(before)
    if before != after:
        raise ConfigEditError(f"{_dotted(parts)}: setting it would change other keys; "
                              "edit the file by hand")


def _pop(data: dict[str, Any], parts: list[KeyPart]) -> Any:
    node: Any = data
    for part in parts[:-1]:
        node = node.get(part.name) if isinstance(node, dict) else None
        if part.index is not None:
            node = node[part.index] if isinstance(node, list) and part.index < len(node) else None
        if node is None:
            return None
    return node.pop(parts[-1].name, None) if isinstance(node, dict) else None


def _prune_empty(data: Any) -> Any:
    """Drop tables left empty (a table added only to hold the key); compare what remains."""
    if isinstance(data, dict):
        for name in list(data):
            if _prune_empty(data[name]) in ({}, [{}]):
                del data[name]
    elif isinstance(data, list):
        for item in data:
            _prune_empty(item)
        while data and data[-1] == {}:
            data.pop()
    return data


def _dotted(parts: list[KeyPart]) -> str:
    return ".".join(p.name if p.index is None else f"{p.name}[{p.index}]" for p in parts)
