"""Wires remote management into the running service: the config commands on the uplink, the
probation of a pushed config, and the report of a rollback done at start."""

from __future__ import annotations

from typing import Any

from gateway.remote.probation import Probation, report_rollback
from gateway.remote.push import ConfigCommands, RunningConfig
from gateway.remote.settings import RemoteSettings
from gateway.remote.trial import ROLLED_BACK, TRIAL, TrialError, read_trial
from gateway.wiring.host import ServiceView


def start_remote(service: ServiceView) -> RunningConfig | None:
    """Called once the components run; returns the running config's version."""
    config = service.config
    settings: RemoteSettings = config.remote or RemoteSettings()
    try:
        running = RunningConfig.of(config, settings)
    except OSError as exc:  # a read-only card: metering goes on, pushes are not offered
        service.record_event("config_history_unavailable", None, {"error": str(exc)}, "error")
        return None
    if service.uplink is not None:
        for op, handler in ConfigCommands(running, lambda: restart(service)).handlers().items():
            service.uplink.commands.register(op, handler)
    try:
        trial = read_trial(config.source)
    except TrialError as exc:
        service.record_event("config_trial_unreadable", None, {"error": str(exc)}, "error")
        return running
    if trial is not None and trial.state == ROLLED_BACK:
        report_rollback(config.source, trial, service.record_event)
    elif trial is not None and trial.state == TRIAL:
        probation = Probation(config.source, trial, healthy_check(service), service.clock,
                              service.record_event, lambda: restart(service))
        service.supervisor.spawn("config-trial", probation.run, critical=False)
    return running


def restart(service: ServiceView) -> None:
    """The console's clean restart: stop, then `gateway run` execs itself again."""
    if service.stop_event is not None:
        service.restart_requested = True
        service.stop_event.set()


def healthy_check(service: ServiceView) -> Any:
    """What is not healthy yet: buses without a good read since start, stale components, no
    ack since start."""
    started = service.started_ms
    acked_at_start = service.uplink.state()["last_ack"] if service.uplink is not None else 0
    by_bus: dict[str, list[str]] = {}
    for meter in service.config.meters:
        by_bus.setdefault(meter.bus, []).append(meter.id)

    def missing() -> list[str]:
        health = service.health
        ok = health.last_ok_ms if health is not None else {}
        silent = [f"bus-{bus}" for bus, meters in sorted(by_bus.items())
                  if not any(ok.get(m, 0) >= started for m in meters)]
        stale = [name for name in service.supervisor.stale() if not name.startswith("bus-")]
        uplink = service.uplink
        no_ack = [] if uplink is None or uplink.state()["last_ack"] > acked_at_start \
            else ["uplink"]
        return silent + stale + no_ack
    return missing
