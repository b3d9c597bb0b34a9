"""Wires the software update into the running service (docs/update.md): `update.offer` /
`update.get` on the uplink, the probation of a new version, the report of a rollback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from gateway.remote.probation import Missing
from gateway.remote.settings import RemoteSettings
from gateway.remote.update_ab import restart_into
from gateway.remote.update_commands import UpdateCommands, UpdatePlace, release_key_of
from gateway.remote.update_fetch import FetchLimits
from gateway.remote.update_mqtt import MqttChunks
from gateway.remote.update_probation import UpdateProbation, report_update_rollback
from gateway.remote.update_trial import ROLLED_BACK, TRIAL, UpdateTrialError, read_update_trial
from gateway.wiring.host import ServiceView
from uplink.errors import SigningKeyFileError


def start_update(service: ServiceView, settings: RemoteSettings, restart: Callable[[], None],
                 missing: Missing) -> None:
    """Nothing unless `[remote] update_prefix` and `release_key` are set. `missing`: what is
    not healthy yet (the checks of a config on trial)."""
    if not settings.update_prefix or not settings.release_key:
        return
    base = service.config.source.parent  # relative paths as the config's other files
    prefix = base / settings.update_prefix
    _settle(service, prefix, restart, missing)
    uplink = service.uplink
    if uplink is None:
        return
    try:
        release_key = release_key_of(base / settings.release_key,
                                     base / uplink.settings.server_public_key)
    except SigningKeyFileError as exc:  # metering goes on; updates are not offered
        service.record_event("update_unavailable", None, {"error": str(exc)}, "error")
        return
    data_dir = service.config.storage.path.parent
    place = UpdatePlace(prefix, data_dir / "update_download", service.config.storage.path,
                        release_key, settings.healthy_within_s,
                        settings.update_max_starts,
                        FetchLimits(settings.update_chunk_bytes, settings.update_pause_ms / 1000,
                                    settings.update_max_mib * 1024 * 1024),
                        settings.update_retry_s)

    @contextlib.asynccontextmanager
    async def chunks() -> AsyncIterator[MqttChunks]:
        async with MqttChunks(uplink._link_config(), uplink.settings.topic_prefix, uplink.gw,
                              answer_timeout_s=settings.update_retry_s) as transport:
            yield transport

    def switched() -> None:
        restart_into(prefix)
        restart()

    commands = UpdateCommands(place, chunks, service.clock, service.record_event, switched)
    for op, handler in commands.handlers().items():
        uplink.commands.register(op, handler)


def _settle(service: ServiceView, prefix: Path, restart: Callable[[], None],
            missing: Missing) -> None:
    try:
        trial = read_update_trial(prefix)
    except UpdateTrialError as exc:
        service.record_event("update_trial_unreadable", None, {"error": str(exc)}, "error")
        return
    if trial is not None and trial.state == ROLLED_BACK:
        report_update_rollback(prefix, trial, service.record_event)
    elif trial is not None and trial.state == TRIAL:
        probation = UpdateProbation(prefix, trial, missing, service.clock,
                                    service.record_event, restart)
        service.supervisor.spawn("update-trial", probation.run, critical=False)
