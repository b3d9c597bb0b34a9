"""Wires remote management into the running service: the config commands on the uplink, the
probation of a pushed config, and the report of a rollback done at start."""

from __future__ import annotations

from typing import Any

from gateway.remote.health import (
    HealthReporter,
    HealthSampler,
    HealthSources,
    health_fields,
)
from gateway.remote.probation import Probation, report_rollback
from gateway.remote.push import ConfigCommands, RunningConfig
from gateway.remote.settings import RemoteSettings
from gateway.remote.trial import ROLLED_BACK, TRIAL, TrialError, read_trial
from gateway.wiring.bus_directory import OpenedBuses
from gateway.wiring.host import ServiceView
from gateway.wiring.update import start_update
from storage import health


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
    if service.uplink is not None and settings.health_interval_s > 0:
        start_health(service, running, settings.health_interval_s)
    start_update(service, settings, lambda: restart(service), healthy_check(service))
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
        stale = service.supervisor.stale()  # a bus here: its scheduler stopped stepping
        uplink = service.uplink
        no_ack = [] if uplink is None or uplink.state()["last_ack"] > acked_at_start \
            else ["uplink"]
        return sorted(set(silent) | set(stale)) + no_ack
    return missing


def start_health(service: ServiceView, running: RunningConfig, interval_s: int) -> None:
    """The `health` outbox kind, its wire encoder and the component that writes it."""
    from uplink.records import register_record_encoder

    store, uplink = service.store, service.uplink
    assert store is not None and uplink is not None
    store.register_outbox_kind(health.OUTBOX_KIND, health.OUTBOX_PRIORITY, health.by_ids)
    register_record_encoder(health.OUTBOX_KIND, health_fields)
    buses = OpenedBuses(service)
    sources = HealthSources(
        clock=service.clock, started_ms=service.started_ms,
        data_dir=service.config.storage.path.parent, config_version=running.describe,
        buses=lambda: {b.bus_id: {"protocol": b.protocol, "counters": dict(b.counters)}
                       for b in buses.buses()},
        outbox_depth=store.outbox_backlog, clock_synced=service.clock_synced,
        components=lambda: component_errors(service),
        temperature_mc=service.board.temperature_mc,
        uplink=lambda: {k: v for k, v in uplink.state().items()
                        if k in ("connected", "last_ack", "head", "last_error")})
    reporter = HealthReporter(store, HealthSampler(sources), interval_s, uplink.wake)
    service.supervisor.spawn("health", reporter.run, critical=False)


def component_errors(service: ServiceView) -> dict[str, Any]:
    """Each component that failed since start: failures, its last error, down right now."""
    return {c.name: {"failures": c.failures, "last_error": c.last_error, "down": c.down}
            for c in service.supervisor.components.values() if c.failures}
