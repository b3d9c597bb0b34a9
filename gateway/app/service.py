"""The gateway service: one asyncio loop wiring storage, buses, schedulers and the writer.

Start-up order matters: the store opens first (a corrupt database stops everything with a clear
error before a meter is touched), then the board, then the buses. Shutdown (SIGTERM) stops the
schedulers, commits what the writer holds in one last transaction, and closes the store: no
half-written transaction, and the relays keep their state.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from board.interface import Board, BoardError
from core.clock import Clock, SystemClock
from drivers.errors import DriverError
from drivers.readings import Sample
from gateway.app.exception_report import ExceptionReport
from gateway.app.meter_records import MeterRecords
from gateway.app.scheduler import BusScheduler, PollPlan
from gateway.app.supervision import ClockState, Failure, Supervisor
from gateway.app.writer import ReadingWriter
from gateway.config.loader import GatewayConfig
from gateway.wiring.protocols import MeterBus, PushSource, open_buses, plugin
from storage.errors import StorageError
from storage.records import FLAG_CLOCK_UNSYNCED, ReadingSet
from storage.store import Store

LOGGER = logging.getLogger(__name__)

# A stuck 4G modem is looked for this often (mmcli is a process: not more often).
MODEM_CHECK_S = 60.0


def make_board(config: GatewayConfig) -> Board:
    """The configured board; BoardError naming `board.state_dir` when it cannot be used."""
    state_dir = config.board.get("state_dir") or str(config.storage.path.parent / "board")
    try:
        return _board_of_kind(config, state_dir)
    except OSError as exc:  # the state directory cannot be made or written (read-only card)
        raise BoardError(f"board.state_dir {state_dir}: {exc.strerror or exc}") from exc


def _board_of_kind(config: GatewayConfig, state_dir: str) -> Board:
    if config.board.get("kind") == "rpi":
        from board.rpi import build_rpi_board

        return build_rpi_board(profile=config.board.get("profile") or "", state_dir=state_dir,
                               bindings=config.board.get("bindings") or {},
                               hardware_watchdog=config.board.get("hardware_watchdog") or "")
    from board.simulated import SimulatedBoard

    return SimulatedBoard(Path(state_dir))


def _make_database_dir(db_path: Path) -> None:
    """The store creates its file, not its directory; check-config accepts a makeable one."""
    from storage.errors import StoreUnwritable

    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnwritable(f"{db_path.parent}: cannot create the database directory: "
                              f"{exc.strerror or exc}") from exc


class MeterHealth:
    """Turns per-read outcomes into one event when a meter goes silent and one when it returns."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._failing: dict[str, str] = {}
        self.last_ok_ms: dict[str, int] = {}
        self.last_error: dict[str, str] = {}

    def ok(self, meter_id: str, ts_ms: int) -> None:
        self.last_ok_ms[meter_id] = ts_ms
        if self._failing.pop(meter_id, None) is not None:
            self._store.add_event("meter_recovered", meter_id=meter_id, data={}, ts_ms=ts_ms)

    def failed(self, meter_id: str, error: Exception, ts_ms: int) -> None:
        reason = f"{type(error).__name__}: {error}"
        self.last_error[meter_id] = reason
        if meter_id not in self._failing:
            self._failing[meter_id] = reason
            self._store.add_event("meter_unreachable", meter_id=meter_id, severity="warning",
                                  data={"reason": reason}, ts_ms=ts_ms)


class Service:
    def __init__(self, config: GatewayConfig, *, board: Board | None = None,
                 clock: Clock | None = None) -> None:
        self.config = config
        self.board = board or make_board(config)
        # the one clock of the composition root: buses and console get it (tests a FakeClock)
        self.clock: Clock = clock if clock is not None else SystemClock()
        # wall seconds for the components that still take a callable (architecture.md "Time")
        self.wall: Callable[[], float] = lambda: self.clock.wall_ms() / 1000
        self.store: Store | None = None
        self.writer: ReadingWriter | None = None
        self.health: MeterHealth | None = None
        self.meter_records: MeterRecords | None = None
        self.buses: dict[str, MeterBus] = {}
        self.push_sources: list[PushSource] = []
        self.prepay: Any = None  # gateway.wiring.prepay.PrepayWiring when [prepay] is configured
        self.uplink: Any = None  # uplink.service.Uplink when [uplink] is configured
        self.analytics: Any = None  # gateway.wiring.analytics.AnalyticsWiring with [analytics]
        self.remote: Any = None  # gateway.remote.push.RunningConfig once running
        self.reading_listeners: list[Callable[[ReadingSet], None]] = []
        self.started_ms = self.clock.wall_ms()
        # Set by the console's `restart`: `gateway run` execs itself again after a clean stop.
        self.restart_requested = False
        self.stop_event: asyncio.Event | None = None
        # whether the wall clock can be trusted yet (None probe: the host clock is)
        self.clock_sync = ClockState(self.board.clock_probe())
        self.clock_synced: Callable[[], bool] = self.clock_sync
        self.supervisor = Supervisor(self.board, on_failure=self._component_failed)

    # -- life cycle ------------------------------------------------------------------------
    def open(self) -> None:
        """Open the store and register the meters: fails fast, before any bus is touched."""
        cfg = self.config
        _make_database_dir(cfg.storage.path)
        # recorded as a `startup_disk_check` event once the store is open
        disk = self.board.disk_check(cfg.storage.path.parent, cfg.storage.path)
        self.store = Store.open(cfg.storage.path, max_bytes=cfg.storage.max_mb * 1024 * 1024)
        if cfg.report is not None:  # report by exception: every set stored, fewer sent
            self.store.send_reading = ExceptionReport(cfg.report).wants
        if disk is not None:
            self.store.add_event("startup_disk_check", meter_id=None, ts_ms=self._now_ms(),
                                 severity="info" if disk.ok else "warning",
                                 data={"free_bytes": disk.free_bytes,
                                       "database_bytes": disk.database_bytes,
                                       "problems": list(disk.problems)})
        for meter in cfg.meters:
            self.store.upsert_meter(meter.id, protocol=meter.protocol, bus=meter.bus,
                                    address=str(meter.address), profile=meter.profile)
            owner = plugin(meter.protocol)
            for sub in owner.sub_meters(meter) if owner and owner.sub_meters else ():
                # a meter that brings others (gas / water / heat read through it)
                self.store.upsert_meter(sub.meter_id, protocol=meter.protocol, bus=meter.bus,
                                        address=sub.address)
        self.writer = ReadingWriter(self.store, cfg.storage.commit_interval_ms / 1000)
        self.health = MeterHealth(self.store)
        self.meter_records = MeterRecords(self.store.meter_record_marks())
        self.writer.after_drop_hooks.append(self._resync_records)
        # -- console (log command): keep the last log records in memory ------------------
        from gateway.console.logring import LogRing

        self.log_ring = LogRing()
        logging.getLogger().addHandler(self.log_ring)
        # -- end console -----------------------------------------------------------------
        if cfg.prepay is not None:
            from gateway.wiring.prepay import PrepayWiring

            self.prepay = PrepayWiring(cfg.prepay, self.store, self.board, cfg.gateway_id,
                                       self.key_file(), self.wall, events=self.record_event,
                                       meters={m.id: m for m in cfg.meters}, clock=self.clock)
            self.writer.in_transaction_hooks.append(self.prepay.charge)
        if cfg.analytics is not None:
            from gateway.wiring.analytics import AnalyticsWiring

            # before the uplink's hook: the batch built in this commit carries the intervals
            self.analytics = AnalyticsWiring(cfg.analytics, self.store)
            self.writer.in_transaction_hooks.append(self.analytics.on_readings)
        if cfg.uplink is not None:
            from gateway.wiring.uplink import build_uplink

            self.uplink = build_uplink(self)
            # the due ack and the next batch ride on the readings' commit (docs/sd-card.md)
            self.writer.in_transaction_hooks.append(self.uplink.in_readings_commit)
            self.writer.after_commit_hooks.append(self.uplink.after_readings_commit)

    def key_file(self) -> Path:
        """The gateway's Ed25519 key (signs batches and voucher receipts)."""
        if self.config.uplink is not None:
            path = Path(self.config.uplink.key_file)
            return path if path.is_absolute() else self.config.source.parent / path
        return self.config.storage.path.parent / "gateway_ed25519.pem"

    async def run(self, stop: asyncio.Event) -> None:
        self.stop_event = stop
        if self.store is None:
            self.open()
        assert self.store is not None and self.writer is not None
        self.store.add_event("gateway_started", meter_id=None, ts_ms=self._now_ms(),
                             data={"meters": len(self.config.meters)})
        self.buses, self.push_sources = open_buses(self.config, self.board, self.record_event,
                                                   self.clock, self._records_until,
                                                   lambda: self.clock_synced())
        self._start_components()
        LOGGER.info("gateway_running", extra={"gateway": self.config.gateway_id,
                                              "meters": len(self.config.meters),
                                              "buses": len(self.buses)})
        try:
            await stop.wait()
        finally:
            await self._shutdown()

    def _start_components(self) -> None:
        """Every long-lived task, through the supervisor (restarted on failure); critical ones
        are what metering needs: while one is down the watchdogs are not fed."""
        sup, writer = self.supervisor, self.writer
        assert writer is not None
        sup.spawn("writer", writer.run)
        sup.alive_checks["storage"] = lambda: writer.last_ok_mono
        sup.spawn("clock", self.clock_sync.run, critical=False)
        for sched in self._schedulers():
            sup.spawn(f"poll-{sched.bus_id}", sched.run)
            sup.alive_checks[f"bus-{sched.bus_id}"] = \
                lambda s=sched: s.last_step_mono  # type: ignore[misc]
        for source in self.push_sources:
            sup.spawn(f"push-{source.bus_id}", functools.partial(source.run, self._pushed))
        self._start_modem()
        if self.prepay is not None:
            self.prepay.start(sup, self.buses)
        # -- console: control socket and [console] port -----------------------------------
        from gateway.wiring.console import start_console

        start_console(self)
        # -- end console -----------------------------------------------------------------
        if self.uplink is not None:
            # a network down for weeks is normal and a restart would not bring it back
            sup.spawn("uplink", self.uplink.run, critical=False)
        from gateway.wiring.remote import start_remote

        self.remote = start_remote(self)  # config.push/get, a pushed config's probation
        sup.spawn("watchdog", sup.run, critical=False)

    async def _shutdown(self) -> None:
        self.supervisor.stopping()
        await self.supervisor.stop()
        for bus in self.buses.values():
            with contextlib.suppress(Exception):
                await bus.close()
        if self.writer is not None:
            self.writer.flush()
        if self.store is not None:
            self.store.add_event("gateway_stopped", meter_id=None, ts_ms=self._now_ms(), data={})
            self.store.close()
            self.store = None
        self.board.close()
        # -- console: the socket closed with its task; stop feeding the log ring ----------
        logging.getLogger().removeHandler(self.log_ring)
        # -- end console -----------------------------------------------------------------
        LOGGER.info("gateway_stopped", extra={"gateway": self.config.gateway_id})

    def _schedulers(self) -> list[BusScheduler]:
        by_bus: dict[str, list[PollPlan]] = {}
        for meter in self.config.meters:
            if meter.bus in self.buses:  # polled buses only: pushed ones are sources
                by_bus.setdefault(meter.bus, []).append(PollPlan(meter.id, meter.poll_interval_s))
        return [BusScheduler(bus_id, plans, self._poll, on_clock_jump=self._clock_jumped)
                for bus_id, plans in by_bus.items()]

    def _start_modem(self) -> None:
        """4G modem supervision where the board has one (it never touches an Ethernet uplink)."""
        from board.modem import Action, ModemPolicy

        stuck_s = float(self.config.board.get("modem_stuck_after_s") or 600)
        watch = self.board.modem(ModemPolicy(stuck_after_s=stuck_s))
        if watch is None:
            return

        async def supervise() -> None:
            while True:
                action = await watch.check()
                if action is not Action.NONE:
                    self.record_event("modem_recovery", None, {"action": action.value}, "warning")
                await asyncio.sleep(MODEM_CHECK_S)
        self.supervisor.spawn("modem", supervise, critical=False)

    # -- polling ---------------------------------------------------------------------------
    async def _poll(self, meter_id: str, slot: float) -> None:
        # a failure is counted by the bus, logged once, and turned into an event by MeterHealth
        with contextlib.suppress(DriverError):
            await self.read_now(meter_id)
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # the driver swallowed our cancellation (a request in flight can finish or fail
            # instead): carrying on would keep this poller running through the shutdown
            raise asyncio.CancelledError

    async def read_now(self, meter_id: str) -> ReadingSet:
        """Read a meter at once (scheduler, `read` command, console); the reading is stored."""
        assert self.health is not None and self.writer is not None
        meter = self.config.meter(meter_id)
        bus = self.buses[meter.bus]
        try:
            samples = await bus.read(meter)
        except DriverError as exc:
            self.health.failed(meter_id, exc, self._now_ms())
            raise
        now_ms = self._now_ms()  # one instant: the reading's and the meter's last good read
        live, records = self._readings(meter.id, samples, now_ms)
        self.health.ok(meter_id, now_ms)
        self._accept_records(records)
        if live is None:  # a read of the meter's records only: nothing was read as of now
            return ReadingSet(meter.id, now_ms, ())
        self.accept(live)
        return live

    def _accept_records(self, records: list[ReadingSet]) -> None:
        """A meter's records, oldest first, up to the first the writer cannot take (it is
        asked for again at the next read: the marks move only past what the writer took)."""
        assert self.writer is not None and self.meter_records is not None
        for record in records:
            if not self.writer.add(record):
                break
            self.meter_records.accepted(record)

    def _resync_records(self) -> None:
        """The writer dropped sets unstored: the marks go back to what the store holds."""
        if self.store is not None and self.writer is not None and self.meter_records:
            self.meter_records.resync(self.store.meter_record_marks(),
                                      self.writer.buffered_records())

    def accept(self, reading: ReadingSet) -> None:
        """A reading from any source (polled or pushed): buffer it and tell the listeners."""
        assert self.writer is not None
        self.writer.add(reading)
        for listener in self.reading_listeners:
            try:
                listener(reading)
            except Exception:  # a display hook must never stop the meter it watches
                LOGGER.exception("reading_listener_failed", extra={"meter": reading.meter_id})

    def _pushed(self, meter_id: str, samples: list[Sample], ts_ms: int) -> None:
        assert self.health is not None
        # meter_id may be a sub-meter (its plugin's `sub_meters`), which has no [[meter]]
        live, records = self._readings(meter_id, samples, ts_ms)
        self.health.ok(meter_id, ts_ms)
        self._accept_records(records)
        if live is not None:
            self.accept(live)

    def record_event(self, kind: str, meter_id: str | None, data: dict[str, Any],
                     severity: str = "info") -> None:
        """An event from a driver or component: stored with its outbox row, and logged."""
        LOGGER.log(logging.WARNING if severity in ("warning", "error", "critical")
                   else logging.INFO, kind, extra={"meter": meter_id, **data})
        self._store_event(kind, meter_id, data, severity)

    def _component_failed(self, failure: Failure) -> None:
        """A supervised task failed: stored (the supervisor already logged it) so it goes up in
        the next batch."""
        self._store_event("component_failed", None, {
            "component": failure.component, "error_type": failure.error_type,
            "error": failure.error, "failures": failure.failures,
            "restart_in_s": failure.restart_in_s,
        }, "error" if failure.critical else "warning")

    def _store_event(self, kind: str, meter_id: str | None, data: dict[str, Any],
                     severity: str) -> None:
        if self.store is None:
            return
        try:
            self.store.add_event(kind, meter_id=meter_id, data=data, ts_ms=self._now_ms(),
                                 severity=severity)
        except StorageError as exc:
            # a refusing disk must not stop the component reporting; the writer's stalled
            # commits withhold the watchdog if it lasts
            LOGGER.error("event_not_stored", extra={"kind": kind, "meter": meter_id,
                                                    "reason": str(exc)})
            return
        if self.uplink is not None:
            self.uplink.wake()

    def _readings(self, meter_id: str, samples: list[Sample],
                  ts_ms: int) -> tuple[ReadingSet | None, list[ReadingSet]]:
        """The set read now and the meter's own records among `samples` (Sample.at_ms)."""
        assert self.meter_records is not None
        flags = 0 if self.clock_synced() else FLAG_CLOCK_UNSYNCED
        return self.meter_records.split(meter_id, samples, ts_ms, flags)

    def _records_until(self, meter_id: str, series: str) -> int | None:
        return self.meter_records.until(meter_id, series) if self.meter_records else None

    def _clock_jumped(self, jump_s: float) -> None:
        if self.store is not None:
            self.store.add_event("clock_jump", meter_id=None, severity="warning",
                                 data={"jump_s": str(round(jump_s, 3))}, ts_ms=self._now_ms())

    def _now_ms(self) -> int:
        return self.clock.wall_ms()
