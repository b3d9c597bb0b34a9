"""`ServiceControlApi`: the console's `ControlApi` over a running `Service`.

Every method turns the component errors (driver, storage, prepay, config) into a `ControlError`
whose message names the meter, bus, key or file and says what to check next. Blocking work
(config parsing, CSV export) runs in a worker thread so the meter polls keep their pace.
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import os
import time
import tomllib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.money import MONEY_SCALE
from drivers.errors import DriverError
from gateway.config.loader import PUSH_PROTOCOLS, ConfigError, load_config
from gateway.console import config_edit
from gateway.console.accounts import atomic_write
from gateway.console.api import (
    BusCounters,
    ConfigEntry,
    ConfigProblem,
    ControlError,
    CreditInfo,
    ExportResult,
    FlushResult,
    GatewayStatus,
    KeyInfo,
    LogLine,
    MeterReading,
    MeterRow,
    Quantity,
    RelayState,
    ScanHit,
)
from gateway.console.config_keys import expected_types
from prepay.errors import PrepayError
from storage import ledger
from storage.errors import StorageError

if TYPE_CHECKING:
    from gateway.app.service import Service

LOGGER = logging.getLogger(__name__)

MODBUS_ADDRESSES = range(1, 248)  # every unicast slave id (0 is broadcast, 248+ reserved)
SCAN_PROBE_TIMEOUT_S = 0.1  # a Modbus meter answers within ~50 ms; 247 ids stay under 40 s
UPLINK_FLUSH_TIMEOUT_S = 30.0  # the console waits this long; the uplink keeps sending after
RESTART_DELAY_S = 0.5  # the restart answer goes out to the console before the service stops
MAX_MONEY_DECIMALS = 2  # a technician types cents, never tenths of a cent
SECRET_WORDS = ("password", "secret", "token", "psk", "hash")  # config keys never shown
COUNTERS_OK = {"modbus": "reads_ok", "iec62056": "reads_ok", "wmbus": "telegrams"}
COUNTERS_NOT_ERRORS = {"reads", "reads_ok", "values", "values_absent", "requests", "retries",
                       "skipped_backoff", "telegrams", "frames", "duplicates", "unknown",
                       "baud_fallbacks", "reconnects"}
COUNTERS_CRC = {"crc", "checksum", "bad_frames", "decode_errors"}
COUNTERS_TIMEOUT = {"timeout", "timeouts", "port_unavailable"}


def _money(units: int) -> Decimal:
    return (Decimal(units) / MONEY_SCALE).quantize(Decimal("0.01"))


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _version() -> str:
    try:
        return metadata.version("meter-gateway")
    except metadata.PackageNotFoundError:
        return "0.1.0"


class ServiceControlApi:
    """Implements `gateway.console.api.ControlApi` over one `Service`."""

    def __init__(self, service: Service) -> None:
        self.service = service

    # -- helpers ---------------------------------------------------------------------------
    @property
    def _store(self) -> Any:
        if self.service.store is None:
            raise ControlError("the service is not running (storage closed); check 'log'")
        return self.service.store

    def _meter(self, meter_id: str) -> Any:
        for meter in self.service.config.meters:
            if meter.id == meter_id:
                return meter
        raise ControlError(f"no meter {meter_id!r}: type 'meters' for the configured ids")

    def _prepay_meter(self, meter_id: str) -> Any:
        self._meter(meter_id)
        prepay = self.service.prepay
        if prepay is None:
            raise ControlError("prepayment is not available on this gateway (no [prepay])")
        settings = prepay.engine.settings.meters.get(meter_id)
        if settings is None:
            raise ControlError(f"{meter_id} is not a prepaid meter (not in [prepay.meters])")
        return settings

    async def _prepay_op(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        from uplink.commands import CommandRefused

        try:
            result: dict[str, Any] = await self.service.prepay.handlers()[op](args, None)
        except CommandRefused as exc:
            raise ControlError(f"{args.get('meter')}: refused ({exc.reason}); "
                               "check 'credit' and 'log'") from None
        except (PrepayError, StorageError) as exc:
            raise ControlError(f"{args.get('meter')}: {exc}; check 'log'") from None
        return result

    # -- status and meters -----------------------------------------------------------------
    async def status(self) -> GatewayStatus:
        usage = await asyncio.to_thread(self._store.usage)
        uplink = getattr(self.service, "uplink", None)
        if uplink is None:
            state = "not configured"
        else:
            info = uplink.state()
            state = "connected" if info.get("connected") else "disconnected"
            if info.get("last_error"):
                state += f" ({info['last_error']})"
        now = self.service.wall()
        return GatewayStatus(
            gateway_id=self.service.config.gateway_id, version=_version(),
            uptime_s=int(now - self.service.started_at), clock=datetime.fromtimestamp(now, UTC),
            storage_used_bytes=usage.bytes_used, storage_limit_bytes=usage.max_bytes,
            uplink_state=state, uplink_backlog=usage.undelivered, buses=self._bus_counters())

    def _bus_counters(self) -> list[BusCounters]:
        rows = []
        for bus in self.service.config.buses:
            meters = [m for m in self.service.config.meters if m.bus == bus.id]
            totals: dict[str, int] = {}
            for counters in self._counters_of(bus.id, meters):
                for name, count in counters.items():
                    totals[name] = totals.get(name, 0) + count
            protocol = meters[0].protocol if meters else ""
            rows.append(_bus_row(bus.id, protocol, totals))
        return rows

    def _counters_of(self, bus_id: str, meters: list[Any]) -> list[dict[str, int]]:
        polled = self.service.buses.get(bus_id)
        if polled is not None:
            return [polled.counters(m.id) for m in meters]
        receiver = self._receiver(bus_id)
        return [receiver.counters()] if receiver is not None else []

    def _receiver(self, bus_id: str) -> Any:
        for source in self.service.push_sources:
            if source.bus_id == bus_id and hasattr(source, "receiver"):
                return source.receiver
        return None

    async def meters(self) -> list[MeterRow]:
        return self._meter_rows()  # small reads; a worker thread here hung the shutdown

    def _meter_rows(self) -> list[MeterRow]:
        health = self.service.health
        rows = []
        for meter in self.service.config.meters:
            last_ms = health.last_ok_ms.get(meter.id) if health else None
            if last_ms is None:
                last = self._store.last_readings(meter.id, 1)
                last_ms = last[0].ts_ms if last else None
            credit, currency = self._balance(meter.id)
            rows.append(MeterRow(
                meter.id, meter.protocol, meter.bus, None if last_ms is None else _utc(last_ms),
                health.last_error.get(meter.id) if health else None, credit, currency))
        return rows

    def _balance(self, meter_id: str) -> tuple[Decimal | None, str]:
        prepay = self.service.prepay
        if prepay is None or meter_id not in prepay.engine.settings.meters:
            return None, ""
        with self._store.transaction() as tx:
            account = ledger.account(tx, meter_id)
        return _money(account.balance), prepay.engine.settings.currency

    async def read_meter(self, meter_id: str) -> MeterReading:
        meter = self._meter(meter_id)
        if meter.protocol in PUSH_PROTOCOLS or meter.bus not in self.service.buses:
            return self._last_pushed(meter)
        try:
            reading = await self.service.read_now(meter_id)
        except DriverError as exc:
            raise ControlError(f"{meter_id} did not answer ({exc}): check the wiring, the "
                               f"address ({meter.address}) and the bus settings") from None
        return MeterReading(meter_id, _utc(reading.ts_ms),
                            [Quantity(v.quantity, v.value, v.unit) for v in reading.values])

    def _last_pushed(self, meter: Any) -> MeterReading:
        last = self._store.last_readings(meter.id, 1)
        if not last:
            raise ControlError(f"{meter.id} ({meter.protocol}) sends on its own and nothing was "
                               "received yet: check the antenna / P1 cable and the meter key")
        reading = last[0]
        return MeterReading(meter.id, _utc(reading.ts_ms),
                            [Quantity(v.quantity, v.value, v.unit) for v in reading.values])

    async def bus_names(self) -> list[str]:
        return [bus.id for bus in self.service.config.buses]

    async def scan_bus(self, bus: str, seconds: int) -> list[ScanHit]:
        if bus not in {b.id for b in self.service.config.buses}:
            raise ControlError(f"no bus {bus!r}: one of {', '.join(await self.bus_names())}")
        known = {str(m.address).upper(): m for m in self.service.config.meters if m.bus == bus}
        driver = getattr(self.service.buses.get(bus), "driver", None)
        if driver is not None and hasattr(driver, "scan"):
            # the driver's per-bus lock interleaves the probes with the scheduled polls
            found = await driver.scan(MODBUS_ADDRESSES, SCAN_PROBE_TIMEOUT_S)
            return [ScanHit(bus, str(a), known[str(a)].profile if str(a) in known else
                            "answers Modbus", known[str(a)].id if str(a) in known else None)
                    for a in found]
        receiver = self._receiver(bus)
        if receiver is None:
            raise ControlError(f"{bus}: scan works on Modbus and wireless M-Bus buses only")
        await asyncio.sleep(seconds)
        return [ScanHit(bus, h.meter, f"{h.manufacturer} type {h.device_type}, heard "
                        f"{h.count} x, {h.last_rssi_dbm} dBm", known[h.meter.upper()].id
                        if h.meter.upper() in known else None)
                for h in receiver.unknown_meters()]

    # -- prepayment ------------------------------------------------------------------------
    async def set_relay(self, meter_id: str, closed: bool) -> RelayState:
        self._prepay_meter(meter_id)
        result = await self._prepay_op("relay.set", {"meter": meter_id,
                                                     "state": "closed" if closed else "open"})
        if bool(result["closed"]) != closed:
            stays = "closed" if result["closed"] else "open"
            raise ControlError(f"{meter_id}: the relay stays {stays} (the credit rules decide);"
                               " check 'credit'")
        return RelayState(meter_id, bool(result["closed"]), _utc(self.service._now_ms()))

    async def credit(self, meter_id: str) -> CreditInfo:
        settings = self._prepay_meter(meter_id)
        engine = self.service.prepay.engine
        with self._store.transaction() as tx:
            account = ledger.account(tx, meter_id)
        active = account.emergency > 0
        return CreditInfo(
            meter_id, _money(account.balance), engine.settings.currency, active,
            Decimal(0) if active else _money(engine.settings.emergency_credit),
            self.service.board.output_state(settings.relay))

    async def topup(self, meter_id: str, amount: Decimal, reference: str) -> CreditInfo:
        self._prepay_meter(meter_id)
        exponent = amount.as_tuple().exponent
        if not amount.is_finite() or amount <= 0 or (isinstance(exponent, int)
                                                      and exponent < -MAX_MONEY_DECIMALS):
            raise ControlError(f"{amount}: give a positive amount with at most "
                               f"{MAX_MONEY_DECIMALS} decimals, e.g. 20.00")
        if not reference.strip():
            raise ControlError("give the receipt number as reference: topup METER AMOUNT REF")
        result = await self._prepay_op("credit.topup", {"meter": meter_id, "amount": str(amount),
                                                        "txid": f"console:{reference}"})
        if not result.get("credited"):
            raise ControlError(f"reference {reference!r} was already used for a top-up; nothing"
                               " was added. Give the receipt number: topup METER AMOUNT REF")
        return await self.credit(meter_id)

    async def emergency(self, meter_id: str) -> CreditInfo:
        self._prepay_meter(meter_id)
        await self._prepay_op("emergency.activate", {"meter": meter_id})
        return await self.credit(meter_id)

    # -- log, config, keys -----------------------------------------------------------------
    async def log_lines(self, after_seq: int | None, limit: int) -> list[LogLine]:
        ring = getattr(self.service, "log_ring", None)
        if ring is None:
            raise ControlError("the service log is not available on this gateway")
        lines: list[LogLine] = ring.lines(after_seq, limit)
        return lines

    async def config_show(self) -> list[ConfigEntry]:
        data = await asyncio.to_thread(self._config_data)
        return [ConfigEntry(key, _shown(key, value)) for key, value in _flatten(data, "")]

    def _config_data(self) -> dict[str, Any]:
        source = self.service.config.source
        try:
            return tomllib.loads(source.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ControlError(f"{source}: cannot read the config ({exc})") from None

    async def config_check(self) -> list[ConfigProblem]:
        source = self.service.config.source
        try:
            await asyncio.to_thread(load_config, source)
        except ConfigError as exc:
            return [_problem(line, str(source)) for line in exc.problems]
        return []

    async def config_set(self, key: str, value: str) -> ConfigEntry:
        source = self.service.config.source
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
        return ConfigEntry(key, _shown(key, typed))

    async def keys_show(self) -> list[KeyInfo]:
        return await asyncio.to_thread(self._key_ids)

    def _key_ids(self) -> list[KeyInfo]:
        from drivers.wmbus.keys import KeyStore

        cfg = self.service.config
        keys = []
        if self.service.key_file().exists():
            keys.append(KeyInfo("gateway-ed25519", "uplink signing and voucher receipts", None))
        for bus in cfg.buses:
            radio = {str(m.address).upper(): m.id for m in cfg.meters
                     if m.bus == bus.id and m.protocol == "wmbus"}
            if not radio:
                continue
            path = Path(bus.key_file) if bus.key_file else cfg.storage.path.parent / \
                "wmbus-keys.json"
            try:
                ids = KeyStore(path).ids()
            except DriverError as exc:
                raise ControlError(f"{path}: {exc}; fix the key file (mode 0600)") from None
            keys += [KeyInfo(i, f"wmbus meter {radio.get(i, 'not configured')}", radio.get(i))
                     for i in ids]
        if self.service.prepay is not None:
            keys += [KeyInfo(kid, "voucher verification (utility)", None)
                     for kid in self.service.prepay.engine.settings.voucher_keys]
        return keys

    # -- uplink, clock, export, audit ------------------------------------------------------
    async def uplink_flush(self) -> FlushResult:
        uplink = getattr(self.service, "uplink", None)
        if uplink is None:
            raise ControlError("the uplink is not available on this gateway (no [uplink])")
        before = await asyncio.to_thread(self._store.outbox_backlog)
        await uplink.flush(UPLINK_FLUSH_TIMEOUT_S)
        after = await asyncio.to_thread(self._store.outbox_backlog)
        return FlushResult(max(0, before - after), after)

    async def set_time(self, when: datetime) -> datetime:
        if when.tzinfo is None:
            raise ControlError(f"{when.isoformat()}: give the zone, e.g. 2026-11-23T17:08:00Z")
        data = {"requested": when.astimezone(UTC).isoformat(), "was": _utc(
            self.service._now_ms()).isoformat()}
        from board.simulated import SimulatedBoard

        if isinstance(self.service.board, SimulatedBoard):
            self.service.record_event("clock_set_refused", None, {**data, "why": "simulated"})
            raise ControlError("this is a simulated board: its clock is the host's; the request "
                               "was recorded")
        try:
            time.clock_settime(time.CLOCK_REALTIME, when.timestamp())
        except PermissionError:
            self.service.record_event("clock_set_refused", None, {**data, "why": "not root"},
                                      "warning")
            raise ControlError("the service may not set the clock (needs root or CAP_SYS_TIME);"
                               " use 'timedatectl set-time' as root") from None
        self.service.record_event("clock_set", None, data, "warning")
        return datetime.now(UTC)

    async def restart(self) -> str:
        stop = self.service.stop_event
        if stop is None:
            raise ControlError("the service is not running its main loop; nothing to restart")
        self.service.record_event("restart_requested", None, {}, "warning")
        self.service.restart_requested = True
        # Later, so that this answer reaches the console before the connection closes.
        asyncio.get_running_loop().call_later(RESTART_DELAY_S, stop.set)
        LOGGER.warning("restart_requested", extra={"in_s": RESTART_DELAY_S})
        return "Restarting the service; relays keep their state. Log in again in a few seconds."

    async def export(self, directory: str, start: date, end: date) -> ExportResult:
        if end < start:
            raise ControlError(f"--until {end} is before --from {start}")
        target = Path(directory)
        if not target.is_dir() or not os.access(target, os.W_OK):
            raise ControlError(f"{directory}: not a writable directory; is the stick mounted?")
        try:
            return await asyncio.to_thread(_export_period, self._store,
                                           self.service.config, target, start, end)
        except OSError as exc:
            raise ControlError(f"{directory}: writing failed ({exc}); is the stick full?") from None
        except StorageError as exc:
            raise ControlError(f"reading the database failed ({exc}); check 'log'") from None

    async def record_audit(self, user: str, command: str, args: list[str], outcome: str) -> None:
        # "arguments", not "args": the event data is also logged, and LogRecord owns "args"
        self.service.record_event("audit", None, {"user": user, "command": command,
                                                  "arguments": list(args), "outcome": outcome})


def _bus_row(bus_id: str, protocol: str, totals: dict[str, int]) -> BusCounters:
    ok = totals.get(COUNTERS_OK.get(protocol, "reads_ok"), 0)
    timeouts = sum(v for k, v in totals.items() if k in COUNTERS_TIMEOUT)
    crc = sum(v for k, v in totals.items() if k in COUNTERS_CRC)
    other = sum(v for k, v in totals.items() if k not in COUNTERS_NOT_ERRORS | COUNTERS_TIMEOUT
                | COUNTERS_CRC)
    return BusCounters(bus_id, ok, timeouts, crc, other)


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


def _flatten(data: Any, prefix: str) -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        items: list[tuple[str, Any]] = []
        for key, value in data.items():
            items += _flatten(value, f"{prefix}.{key}" if prefix else key)
        return items
    if isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        return [pair for i, v in enumerate(data) for pair in _flatten(v, f"{prefix}[{i}]")]
    return [(prefix, data)]


def _shown(key: str, value: Any) -> str:
    name = key.rsplit(".", 1)[-1].lower()
    if any(word in name for word in SECRET_WORDS):
        return "<hidden>"
    return _toml(value)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # JSON string escapes are valid TOML basic-string escapes; TOML also forbids DEL
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


# -- export: CSV files of a period (columns documented in docs/console.md) -------------------
READING_COLUMNS = ["meter_id", "time_utc", "ts_ms", "quantity", "value", "unit", "flags"]
EVENT_COLUMNS = ["event_id", "time_utc", "ts_ms", "meter_id", "kind", "severity", "data"]
LEDGER_COLUMNS = ["entry_id", "time_utc", "ts_ms", "meter_id", "kind", "amount", "credit", "debt",
                  "emergency", "balance_after", "key"]
EXPORT_CHUNK_ROWS = 5000  # rows per query: the writer waits at most one chunk for the database


def _day_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def _stamp(ms: int) -> str:
    return _utc(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _export_period(store: Any, config: Any, target: Path, start: date, end: date
                   ) -> ExportResult:
    """Write readings_, events_ and ledger_START_END.csv into `target`; [start, end] in UTC."""
    lo, hi = _day_ms(start), _day_ms(end + timedelta(days=1))
    suffix = f"{start.isoformat()}_{end.isoformat()}.csv"
    counts = []
    for name, columns, rows in (
        ("readings", READING_COLUMNS, _reading_rows(store, config, lo, hi)),
        ("events", EVENT_COLUMNS, _table_rows(store, _EVENTS_SQL, lo, hi)),
        ("ledger", LEDGER_COLUMNS, _ledger_rows(store, lo, hi)),
    ):
        counts.append(_write_csv(target / f"{name}_{suffix}", columns, rows))
    LOGGER.info("export_written", extra={"dir": str(target), "readings": counts[0],
                                         "events": counts[1], "ledger": counts[2]})
    files = [f"{name}_{suffix}" for name in ("readings", "events", "ledger")]
    return ExportResult(str(target), files, counts[0], counts[1], counts[2])


def _write_csv(path: Path, columns: list[str], rows: Any) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(row)
            count += 1
        handle.flush()
        os.fsync(handle.fileno())  # the technician pulls the stick right after
    return count


def _reading_rows(store: Any, config: Any, lo: int, hi: int) -> Any:
    for meter in config.meters:
        try:
            sets = store.readings_between(meter.id, lo, hi)
        except StorageError:
            continue  # a meter never stored (added to the config, not yet read)
        for rs in sets:
            for v in rs.values:
                yield [rs.meter_id, _stamp(rs.ts_ms), rs.ts_ms, v.quantity, str(v.value), v.unit,
                       rs.flags]


_EVENTS_SQL = ("SELECT id, ts_ms, meter_id, kind, severity, data FROM events "
               "WHERE id > ? AND ts_ms >= ? AND ts_ms < ? ORDER BY id LIMIT ?")


def _table_rows(store: Any, sql: str, lo: int, hi: int) -> Any:
    after = 0
    while True:
        with store.transaction() as tx:
            rows = tx.execute(sql, (after, lo, hi, EXPORT_CHUNK_ROWS)).fetchall()
        for event_id, ts, meter, kind, severity, data in rows:
            yield [event_id, _stamp(ts), ts, meter or "", kind, severity,
                   json.dumps(json.loads(data), sort_keys=True)]
        if len(rows) < EXPORT_CHUNK_ROWS:
            return
        after = rows[-1][0]


def _ledger_rows(store: Any, lo: int, hi: int) -> Any:
    after = 0
    while True:
        with store.transaction() as tx:
            entries = ledger.entries(tx, after_id=after, limit=EXPORT_CHUNK_ROWS)
        for e in entries:
            if lo <= e.ts_ms < hi:
                yield [e.id, _stamp(e.ts_ms), e.ts_ms, e.meter_id, e.kind,
                       *(str(Decimal(x) / MONEY_SCALE) for x in
                         (e.amount, e.credit, e.debt, e.emergency, e.balance_after or 0)), e.key]
        if len(entries) < EXPORT_CHUNK_ROWS:
            return
        after = entries[-1].id or after
