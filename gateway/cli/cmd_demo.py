"""`gateway demo`: a complete simulated site on this machine, with live readings printed.

Beside the simulated meters and board it runs the uplink: a local Mosquitto (when installed, or
the broker given with --broker) and the reference head-end, which verifies and acks every batch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.app.logs import setup_logging
from gateway.cli.args import broker_url, non_negative_seconds, positive_int
from gateway.config.loader import GatewayConfig, load_config
from gateway.config.preflight import directory_problem
from storage.records import ReadingSet

if TYPE_CHECKING:
    from drivers.plugin import Simulation

# The quantities worth a glance on one line; the rest is in `gateway readings`.
HEADLINE = ("import_active_energy", "active_power", "voltage", "voltage_l1", "current",
            "current_l1", "frequency")
HEADEND_REPORT_S = 5.0
EXIT_USAGE = 2


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="run a complete simulated site and print live readings")
    demo.add_argument("--state", help="keep keys, databases and ptys under this directory "
                                      "(default: a temporary directory, removed at the end)")
    demo.add_argument("--for", dest="seconds", type=non_negative_seconds, default=0,
                      help="stop after this many seconds (default: until Ctrl-C)")
    demo.add_argument("--poll", type=positive_int, default=5,
                      help="poll interval of the meters (s)")
    demo.add_argument("--broker", type=broker_url,
                      help="use this running broker (mqtt://HOST:PORT) instead of "
                           "starting a local Mosquitto")
    demo.set_defaults(func=cmd_demo)


def headline(reading: ReadingSet) -> str:
    values = {v.quantity: v for v in reading.values}
    parts = [f"{q}={values[q].value} {values[q].unit}".rstrip()
             for q in HEADLINE if q in values]
    secs = reading.ts_ms // 1000
    clock = f"{secs % 86400 // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}Z"
    return f"{clock}  {reading.meter_id:<8}  {'  '.join(parts)}  ({len(reading.values)} values)"


def say(line: str) -> None:
    # a closed stdout (`gateway demo | head`) must not stop the site: the output is a view only
    with contextlib.suppress(BrokenPipeError, ValueError):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def cmd_demo(args: argparse.Namespace) -> int:
    state = Path(args.state) if args.state else Path(tempfile.mkdtemp(prefix="gateway-demo-"))
    if (why := directory_problem(state)) is not None:
        sys.stderr.write(f"gateway demo: --state: {why}\n")
        return EXIT_USAGE
    state.mkdir(parents=True, exist_ok=True)
    setup_logging("warning")
    broker = None
    sims: list[Simulation] = []
    try:
        sims = _simulations(state, args.poll)
        broker_url = args.broker
        if broker_url is None:
            broker = _local_broker(state)
            broker_url = broker.url if broker is not None else None
        uplink = _uplink_section(state, broker_url) if broker_url else ""
        config_path = state / "site.toml"
        config_path.write_text(_site_header(state) + "".join(s.toml for s in sims) + uplink)
        config = load_config(config_path)
        meters, buses = sum(s.meters for s in sims), sum(s.buses for s in sims)
        say(f"simulated site: {meters} meters on {buses} buses (config {config_path})")
        say(f"uplink: batches to {broker_url}, verified and acked by the head-end" if broker_url
            else "uplink: off (install mosquitto, or pass --broker mqtt://HOST:PORT)")
        say("Ctrl-C stops")
        asyncio.run(_run(config, args.seconds, state, broker_url))
    finally:
        for sim in sims:
            sim.stop()
        if broker is not None:
            broker.stop()
        if not args.state:
            shutil.rmtree(state, ignore_errors=True)
    return 0


def _simulations(state: Path, poll_s: int) -> list[Simulation]:
    """Every plugin that can simulate its meters starts its simulators (the demo names none)."""
    from gateway.wiring.protocols import plugins

    sims: list[Simulation] = []
    try:
        for plugin in plugins():
            if plugin.simulate is not None:
                sims.append(plugin.simulate(state / plugin.name, poll_s))
    except BaseException:
        for sim in sims:
            sim.stop()
        raise
    return sims


def _site_header(state: Path) -> str:
    return (f'gateway_id = "gw-demo"\n\n[storage]\npath = "{state / "gateway.db"}"\n'
            f'commit_interval_ms = 1000\n\n[board]\nkind = "simulated"\n'
            f'state_dir = "{state / "board"}"\n\n')


def _local_broker(state: Path) -> Any:
    from uplink.localbroker import MOSQUITTO, Mosquitto

    if MOSQUITTO is None:
        return None
    (state / "broker").mkdir(exist_ok=True)
    return Mosquitto(state / "broker").start()


def _uplink_section(state: Path, broker_url: str) -> str:
    from uplink.demo import demo_keys
    from uplink.keys import public_pem

    keys = demo_keys(state)
    (state / "headend_public.pem").write_text(public_pem(keys.headend))
    return (f'\n[uplink]\nbroker_url = "{broker_url}"\n'
            f'key_file = "{state / "gateway_ed25519.pem"}"\n'
            f'server_public_key = "{state / "headend_public.pem"}"\n')


async def _run(config: GatewayConfig, seconds: float, state: Path,
               broker_url: str | None) -> None:
    from gateway.app.service import Service

    service = Service(config)
    service.reading_listeners.append(lambda reading: say(headline(reading)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if seconds:
        loop.call_later(seconds, stop.set)
    extra: list[asyncio.Task[None]] = []
    headend = None
    if broker_url:
        from uplink.demo import demo_headend, demo_keys

        headend = demo_headend(state, broker_url, config.gateway_id, demo_keys(state))
        extra = [asyncio.create_task(headend.run()),
                 asyncio.create_task(_report(headend))]
    try:
        await service.run(stop)
    finally:
        for task in extra:
            task.cancel()
        await asyncio.gather(*extra, return_exceptions=True)
        if headend is not None:
            headend.store.close()


async def _report(headend: Any) -> None:
    last = -1
    while True:
        await asyncio.sleep(HEADEND_REPORT_S)
        stats = headend.stats
        if stats.stored != last:
            last = stats.stored
            say(f"head-end: {stats.stored} batches verified and stored, {stats.records} records,"
                f" {stats.acks_sent} acks sent, {stats.refused} refused")
