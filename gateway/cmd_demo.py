"""`gateway demo`: a complete simulated site on this machine, with live readings printed."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from gateway.config import GatewayConfig, load_config
from gateway.demo import DEMO_SITE, site_config, start_simulators
from gateway.logs import setup_logging
from storage.records import ReadingSet

# The quantities worth a glance on one line; the rest is in `gateway readings`.
HEADLINE = ("import_active_energy", "active_power", "voltage", "voltage_l1", "current",
            "current_l1", "frequency")


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="run a complete simulated site and print live readings")
    demo.add_argument("--state", help="keep keys, databases and ptys under this directory "
                                      "(default: a temporary directory, removed at the end)")
    demo.add_argument("--for", dest="seconds", type=float, default=0,
                      help="stop after this many seconds (default: until Ctrl-C)")
    demo.add_argument("--poll", type=int, default=5, help="poll interval of the meters (s)")
    demo.set_defaults(func=cmd_demo)


def headline(reading: ReadingSet) -> str:
    values = {v.quantity: v for v in reading.values}
    parts = [f"{q}={values[q].value} {values[q].unit}".rstrip()
             for q in HEADLINE if q in values]
    clock = f"{reading.ts_ms // 1000 % 86400 // 3600:02d}:{reading.ts_ms // 60000 % 60:02d}:" \
            f"{reading.ts_ms // 1000 % 60:02d}Z"
    return f"{clock}  {reading.meter_id:<8}  {'  '.join(parts)}  ({len(reading.values)} values)"


def cmd_demo(args: argparse.Namespace) -> int:
    state = Path(args.state) if args.state else Path(tempfile.mkdtemp(prefix="gateway-demo-"))
    setup_logging("warning")
    sim = start_simulators(DEMO_SITE, state / "sim", stderr=sys.stderr)
    try:
        config_path = state / "site.toml"
        config_path.write_text(site_config(sim, state, poll_interval_s=args.poll))
        config = load_config(config_path)
        meters = sum(len(b.meters) for b in DEMO_SITE)
        sys.stdout.write(f"simulated site: {meters} meters on {len(DEMO_SITE)} buses "
                         f"(config {config_path}); Ctrl-C stops\n")
        sys.stdout.flush()
        asyncio.run(_run(config, args.seconds))
    finally:
        sim.stop()
        if not args.state:
            shutil.rmtree(state, ignore_errors=True)
    return 0


async def _run(config: GatewayConfig, seconds: float) -> None:
    from gateway.service import Service

    service = Service(config)

    def show(reading: ReadingSet) -> None:
        sys.stdout.write(headline(reading) + "\n")
        sys.stdout.flush()

    service.reading_listeners.append(show)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if seconds:
        loop.call_later(seconds, stop.set)
    await service.run(stop)
