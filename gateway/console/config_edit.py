"""`config set KEY VALUE` on the TOML text: change one key, keep every other line and comment.

Keys are dotted: "section.key", "section.sub.key", or "table[INDEX].key" for an array of
tables ("meter[2].address" is the third [[meter]]). VALUE is a TOML value literal ("\"text\"",
9600, true). The result is re-parsed and compared with the original so that nothing but the one
key changed; the caller validates the whole config and writes it with `accounts.atomic_write`.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

KEY_RE = re.compile(r"^(?P<tables>([A-Za-z0-9_-]+(\[\d+\])?\.)*)(?P<key>[A-Za-z0-9_-]+)$")
_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\- ]+?)\s*\]\]?\s*(#.*)?$")


class ConfigEditError(ValueError):
    """The key or value cannot be set; the message names it and says what to do."""


def parse_value(literal: str, key: str) -> Any:
    if "\n" in literal or "\r" in literal:
        raise ConfigEditError(f"{key}: the value must be one line (not a TOML value otherwise)")
    try:
        return tomllib.loads(f"v = {literal}")["v"]
    except tomllib.TOMLDecodeError:
        raise ConfigEditError(
            f"{key}: {literal!r} is not a TOML value; quote text as '\"text\"'"
        ) from None


def set_value(text: str, key: str, literal: str) -> str:
    """Return `text` with `key` set to the TOML `literal` (added if the table lacks it)."""
    match = KEY_RE.match(key)
    if match is None:
        raise ConfigEditError(f"{key!r} is not a key like uplink.host or meter[0].address")
    value = parse_value(literal, key)
    table_path, name = match["tables"].rstrip("."), match["key"]
    if not table_path:
        raise ConfigEditError(f"{key}: top-level keys cannot be set here; edit the file")
    lines = text.splitlines()
    start, end = _table_span(lines, table_path, key)
    new_line = f"{name} = {literal.strip()}"
    for index in range(start, end):
        if re.match(rf"^\s*{re.escape(name)}\s*=", lines[index]):
            lines[index] = new_line
            break
    else:
        lines.insert(end if end > start else start, new_line)
    new_text = "\n".join(lines) + "\n"
    _check_only_key_changed(text, new_text, table_path, name, value)
    return new_text


def _table_span(lines: list[str], table_path: str, key: str) -> tuple[int, int]:
    """Line range (after the header, up to the next header) of the table `table_path`."""
    wanted, index = _split_index(table_path)
    seen = -1
    for number, line in enumerate(lines):
        header = _HEADER.match(line)
        if header is None:
            continue
        name = re.sub(r"\s+", "", header[2])
        if name != wanted:
            continue
        is_array = header[1] == "[["
        if (index is None) == is_array:
            continue
        seen += 1
        if index is None or seen == index:
            end = next((n for n in range(number + 1, len(lines)) if _HEADER.match(lines[n])),
                       len(lines))
            while end > number + 1 and not lines[end - 1].strip():
                end -= 1  # insert new keys before the blank lines that separate tables
            return number + 1, end
    raise ConfigEditError(f"{key}: no table [{table_path}] in the config; check 'config show'")


def _split_index(table_path: str) -> tuple[str, int | None]:
    indexed = re.match(r"^(.*)\[(\d+)\]$", table_path)
    if indexed:
        return indexed[1], int(indexed[2])
    return table_path, None


def _check_only_key_changed(old: str, new: str, table_path: str, name: str, value: Any) -> None:
    try:
        before, after = tomllib.loads(old), tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigEditError(f"the config does not parse ({exc}); fix it by hand first") from exc
    for data in (before, after):
        table = _walk(data, table_path)
        if data is after and table.get(name) != value:
            raise ConfigEditError(f"{table_path}.{name}: could not be set; edit the file by hand")
        table.pop(name, None)
    if before != after:
        raise ConfigEditError(f"{table_path}.{name}: setting it would change other keys; "
                              "edit the file by hand")


def _walk(data: dict[str, Any], table_path: str) -> dict[str, Any]:
    node: Any = data
    for part in table_path.split("."):
        base, index = _split_index(part)
        node = node[base] if index is None else node[base][index]
    if not isinstance(node, dict):
        raise ConfigEditError(f"{table_path} is not a table")
    return node
