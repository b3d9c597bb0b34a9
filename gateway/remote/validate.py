"""A pushed config checked exactly as `gateway check-config` checks a file, plus what a remote
change must not do (leave the gateway without its uplink, its identity or its database)."""

from __future__ import annotations

import os
from pathlib import Path

from gateway.config.loader import ConfigError, GatewayConfig, load_config
from gateway.config.preflight import environment_problems


def problems_of_text(running: GatewayConfig, text: str) -> list[str]:
    """Every problem of `text` as the config of this gateway; [] when it may be switched to.

    The text is written next to the running file, so relative paths resolve the same, and
    loaded with the loader and start-up checks that `check-config` and `run` use.
    """
    source = running.source
    probe = source.with_name(f".{source.name}.push-{os.getpid()}")
    probe.write_text(text, encoding="utf-8")
    try:
        return [line.replace(str(probe), source.name) for line in _problems(probe, running)]
    finally:
        probe.unlink(missing_ok=True)


def _problems(probe: Path, running: GatewayConfig) -> list[str]:
    try:
        new = load_config(probe)
    except ConfigError as exc:
        partial = [] if exc.partial is None else environment_problems(exc.partial)
        return exc.problems + partial + _remote_problems(exc.partial, running)
    return environment_problems(new) + _remote_problems(new, running)


def _remote_problems(new: GatewayConfig | None, running: GatewayConfig) -> list[str]:
    """A pushed config must keep the way back: the same id, [uplink], the same database."""
    if new is None:
        return []
    name = running.source.name
    problems = []
    if new.gateway_id != running.gateway_id:
        problems.append(f"{name}: key `gateway_id`: {new.gateway_id!r} is not this gateway "
                        f"({running.gateway_id!r}); a push cannot rename a gateway")
    if "uplink" not in new.sections:
        problems.append(f"{name}: key `uplink`: missing; without it the gateway could not be "
                        "reached again")
    if new.storage.path.resolve() != running.storage.path.resolve():
        problems.append(f"{name}: key `storage.path`: {new.storage.path} differs from the "
                        f"running {running.storage.path}; the outbox and history live there")
    return problems
