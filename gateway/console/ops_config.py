"""Service-side config operations: show (secrets hidden), check, and set one key.

The file is the one the service started from; `config set` edits it with tomlkit, validates the
result like `gateway check-config` and writes it atomically. Parsing runs in a worker thread so
the meter polls keep their pace. The functions take the file's path alone (the fuzzer runs
`config_set` on a copy).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tomllib
from datetime import date, datetime
from pathlib import Path
from typing import Any

from gateway.config.loader import ConfigError, load_config
from gateway.console import config_edit
from gateway.console.accounts import atomic_write
from gateway.console.api import ConfigEntry, ConfigProblem, ControlError
from gateway.console.config_keys import expected_types
from gateway.console.ops_common import OpsBase

LOGGER = logging.getLogger(__name__)

SECRET_WORDS = ("password", "secret", "token", "psk", "hash")  # config keys never shown


class ConfigOps(OpsBase):
    async def config_show(self) -> list[ConfigEntry]:
        return await config_show(self.ports.config.source)

    async def config_check(self) -> list[ConfigProblem]:
        return await config_check(self.ports.config.source)

    async def config_set(self, key: str, value: str) -> ConfigEntry:
        return await config_set(self.ports.config.source, key, value)


async def config_show(source: Path) -> list[ConfigEntry]:
    data = await asyncio.to_thread(_config_data, source)
    return [ConfigEntry(key, shown(key, value)) for key, value in flatten(data, "")]


def _config_data(source: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ControlError(f"{source}: cannot read the config ({exc})") from None


async def config_check(source: Path) -> list[ConfigProblem]:
    try:
        await asyncio.to_thread(load_config, source)
    except ConfigError as exc:
        return [_problem(line, str(source)) for line in exc.problems]
    return []


async def config_set(source: Path, key: str, value: str) -> ConfigEntry:
    try:
        text = source.read_text(encoding="utf-8")
        parts = config_edit.parse_key(key)
        current = tomllib.loads(text)
        typed = config_edit.typed_value(value, expected_types(parts, current), key)
        new_text = config_edit.set_value(text, key, typed)
    except config_edit.ConfigEditError as exc:
        raise ControlError(str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ControlError(f"{source}: the config does not parse ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ControlError(f"{source}: cannot read the config ({exc})") from None
    await asyncio.to_thread(_validate_text, source, new_text)
    try:
        await asyncio.to_thread(atomic_write, source, new_text)
    except OSError as exc:
        raise ControlError(f"{source}: cannot write ({exc}); is the disk read-only?") from None
    LOGGER.info("config_changed", extra={"key": key, "file": str(source)})
    return ConfigEntry(key, shown(key, typed))


def _validate_text(source: Path, text: str) -> None:
    """load_config on the new text, next to the file so relative paths resolve the same."""
    probe = source.with_name(f".{source.name}.check-{os.getpid()}")
    probe.write_text(text, encoding="utf-8")
    try:
        load_config(probe)
    except ConfigError as exc:
        problems = "; ".join(p.replace(str(probe), source.name) for p in exc.problems)
        raise ControlError(f"not changed, the new config has problems: {problems}") from None
    finally:
        probe.unlink(missing_ok=True)


def _problem(line: str, source: str) -> ConfigProblem:
    rest = line.removeprefix(f"{source}: ")
    if rest.startswith("key `"):
        key, _, message = rest[5:].partition("`: ")
        return ConfigProblem(key, message)
    return ConfigProblem("", rest)


def flatten(data: Any, prefix: str) -> list[tuple[str, Any]]:
    """A parsed TOML document as (dotted key, value) pairs; arrays of tables as key[i]."""
    if isinstance(data, dict):
        items: list[tuple[str, Any]] = []
        for key, value in data.items():
            items += flatten(value, f"{prefix}.{key}" if prefix else key)
        return items
    if isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        return [pair for i, v in enumerate(data) for pair in flatten(v, f"{prefix}[{i}]")]
    return [(prefix, data)]


def shown(key: str, value: Any) -> str:
    """The value as TOML, or <hidden> for a key that names a secret."""
    name = key.rsplit(".", 1)[-1].lower()
    if any(word in name for word in SECRET_WORDS):
        return "<hidden>"
    return toml_literal(value)


def toml_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # JSON string escapes are valid TOML basic-string escapes; TOML also forbids DEL
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_literal(v)}" for k, v in value.items()) + " }"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
