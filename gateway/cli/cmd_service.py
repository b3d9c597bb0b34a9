"""Sub-commands `run`, `check-config` and `readings`: the service and its everyday companions."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from board.interface import Board, BoardError
from core.logs import set_trace
from gateway.app.logs import setup_logging
from gateway.cli.args import positive_int
from gateway.cli.main import EXIT_CONFIG, EXIT_FAILURE
from gateway.config.loader import ConfigError, GatewayConfig, load_config
from gateway.wiring.uplink import UplinkSetupError
from storage.errors import StorageError, UnknownMeter
from storage.records import ReadingSet

if TYPE_CHECKING:
    from gateway.app.service import Service

LOGGER = logging.getLogger(__name__)
DEFAULT_CONFIG = os.environ.get("GATEWAY_CONFIG", "/etc/gateway/gateway.toml")


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run the gateway service")
    run.add_argument("--config", default=DEFAULT_CONFIG, help="TOML config file")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate a config file and exit (2 if invalid)")
    check.add_argument("file")
    check.set_defaults(func=cmd_check_config)

    readings = sub.add_parser("readings", help="print a meter's last stored readings")
    readings.add_argument("--config", default=DEFAULT_CONFIG)
    readings.add_argument("--db", help="database file (default: storage.path of the config)")
    readings.add_argument("--meter", required=True)
    readings.add_argument("--last", type=positive_int, default=10, metavar="N")
    readings.add_argument("--json", action="store_true", help="one JSON object per line")
    readings.set_defaults(func=cmd_readings)


def report_problems(lines: list[str]) -> int:
    for line in lines:
        sys.stderr.write(f"config error: {line}\n")
    return EXIT_CONFIG


def load_or_report(path: str) -> GatewayConfig | None:
    """The validated config, or None after printing each problem (the caller exits 2)."""
    try:
        return load_config(path)
    except ConfigError as exc:
        report_problems(exc.problems)
        return None


def load_checked(path: str) -> GatewayConfig | None:
    """As load_or_report, plus everything `run` would trip on (key files, directories).

    The files are checked even when the config has problems (as far as it could be read), so
    a technician sees every problem in one pass.
    """
    from gateway.config.preflight import environment_problems

    try:
        config = load_config(path)
    except ConfigError as exc:
        partial = [] if exc.partial is None else environment_problems(exc.partial)
        report_problems(exc.problems + partial)
        return None
    if problems := environment_problems(config):
        report_problems(problems)
        return None
    return config


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load_checked(args.file)
    if config is None:
        return EXIT_CONFIG
    sys.stdout.write(f"{args.file}: OK (gateway {config.gateway_id}, {len(config.buses)} buses, "
                     f"{len(config.meters)} meters)\n")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    _settle_pushed_config(Path(args.config))
    config = load_checked(args.config)
    if config is None:
        return EXIT_CONFIG
    setup_logging(config.log_level)
    if _settle_update(config):
        _exec_again()  # rolled back: into the previous version
    for protocol in config.log_trace:  # [log] trace: wire bytes from the start
        set_trace(protocol, True)
    # imported late: check-config must not need storage
    from gateway.app.service import Service, make_board

    # The checks above passed, so a failure here is a race (a card remounted read-only since)
    # or damage found only on opening (a corrupt database): one line, exit 1.
    try:
        board = make_board(config)
        _keep_recent_errors(board, config.storage.path.parent)
        service = Service(config, board=board)
        service.open()
    except (StorageError, BoardError, UplinkSetupError) as exc:
        LOGGER.critical("startup_failed", extra={"reason": str(exc)})
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FAILURE
    asyncio.run(_serve(service))
    if service.restart_requested:
        _exec_again()
    return 0


def _settle_pushed_config(path: Path) -> None:
    """A pushed config on trial that did not prove itself before this start (a crash, a
    watchdog kill) is rolled back here, before it is loaded (gateway/remote/trial.py)."""
    from gateway.remote.trial import TrialError, settle_at_start

    try:
        settle_at_start(path)
    except TrialError as exc:  # run what is there; the service reports the marker
        sys.stderr.write(f"error: {exc}\n")


def _settle_update(config: GatewayConfig) -> bool:
    """A new version on trial counts this start; True when the count rolled it back
    (docs/update.md; the unit's ExecStartPre runs the same guard for a version that cannot
    even import)."""
    prefix = config.remote.update_prefix if config.remote is not None else ""
    if not prefix:
        return False
    from gateway.remote.update_ab import InstallError, restart_into
    from gateway.remote.update_trial import ROLLED_BACK, UpdateTrialError, guard_start

    try:
        before = _update_state(Path(prefix))
        trial = guard_start(Path(prefix))
    except (UpdateTrialError, InstallError, OSError) as exc:  # run what is there
        sys.stderr.write(f"error: {exc}\n")
        return False
    if trial is not None and trial.state == ROLLED_BACK and before != ROLLED_BACK:
        restart_into(Path(prefix))
        return True
    return False


def _update_state(prefix: Path) -> str | None:
    from gateway.remote.update_trial import read_update_trial

    trial = read_update_trial(prefix)
    return None if trial is None else trial.state


def _keep_recent_errors(board: Board, data_dir: Path) -> None:
    """Where the journal is in RAM (a real board), recent errors go to a ring on disk as well:
    otherwise a reboot erases why it rebooted."""
    path = board.error_ring_path(data_dir)
    if path is not None:
        from board.disk import ErrorRing

        logging.getLogger().addHandler(ErrorRing(path))


def _exec_again() -> None:
    """The console's `restart`: after the clean stop, the same command line in this process.

    Same PID, so systemd (Type=notify, READY=1 sent again) and a shell see one service; works
    the same without systemd (gateway demo, a technician's terminal).
    """
    from gateway.remote.update_ab import restart_interpreter

    python = str(restart_interpreter() or sys.executable)  # after an update: the new version
    LOGGER.warning("restarting", extra={"argv": sys.orig_argv, "python": python})
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(python, [python, *sys.orig_argv[1:]])


async def _serve(service: Service) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.run(stop)


def cmd_readings(args: argparse.Namespace) -> int:
    from storage.store import Store

    if args.db:
        db = Path(args.db)
    else:
        config = load_or_report(args.config)
        if config is None:
            return 2
        db = config.storage.path
    if not db.exists():
        sys.stderr.write(f"error: database {db} does not exist\n")
        return 1
    try:
        store = Store.open(db, create=False)
    except StorageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    try:
        rows = store.last_readings(args.meter, args.last)
    except UnknownMeter:
        sys.stderr.write(f"error: no meter {args.meter!r} in {db}\n")
        return 1
    finally:
        store.close()
    if not rows:
        sys.stderr.write(f"no readings stored for meter {args.meter!r} in {db}\n")
        return 1
    for row in rows:
        sys.stdout.write(format_reading(row, args.json) + "\n")
    return 0


def format_reading(row: ReadingSet, as_json: bool = False) -> str:
    """One line per reading: human-readable with units, or a JSON object with exact strings."""
    ts = datetime.fromtimestamp(row.ts_ms / 1000, UTC)
    if as_json:
        return json.dumps({"meter": row.meter_id, "ts": ts.isoformat(), "id": row.id,
                           "values": {v.quantity: str(v.value) for v in row.values},
                           "units": {v.quantity: v.unit for v in row.values}})
    parts = "  ".join(f"{v.quantity}={v.value}{(' ' + v.unit) if v.unit else ''}"
                      for v in row.values)
    return f"{ts:%Y-%m-%d %H:%M:%S}Z  {row.meter_id}  {parts}"
