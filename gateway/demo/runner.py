"""Run the demo site: the real service in this process, the head-end beside it, the story, a view.

The service is `gateway.app.service.Service`, exactly what `gateway run` runs; the demo only
listens to its readings and reads its store and state on the same loop (the store's owner).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from core.errors import MeterGatewayError
from gateway.config.loader import GatewayConfig
from gateway.demo.scenario import Scenario
from gateway.demo.status import Collector
from gateway.demo.view import PlainLines, render

REFRESH_S: Final = 1.0


@dataclass(frozen=True)
class RunOptions:
    seconds: float
    state: Path
    broker_url: str | None
    config_path: Path
    live: bool  # the refreshing panel; plain lines otherwise
    console_hint: str = ""


async def run_site(config: GatewayConfig, options: RunOptions) -> None:
    from gateway.app.service import Service

    service = Service(config)
    service.open()
    collector = Collector(service, str(options.config_path), options.broker_url)
    scenario = Scenario(service, options.state, collector.note)
    plain = None if options.live else PlainLines()
    service.reading_listeners += [collector.on_reading, scenario.on_reading]
    if plain is not None:
        service.reading_listeners.append(plain.reading)
    stop = _stop_event(options.seconds)
    tasks: list[asyncio.Task[Any]] = []
    headend = None
    if options.broker_url:
        from uplink.demo import demo_headend, demo_keys

        headend = demo_headend(options.state, options.broker_url, config.gateway_id,
                               demo_keys(options.state))
        collector.headend = scenario.headend = headend
        scenario.broker_url = options.broker_url
        tasks.append(asyncio.create_task(headend.run()))
    tasks += [asyncio.create_task(_story(scenario, collector)),
              asyncio.create_task(_refresh(collector, plain, options))]
    try:
        await service.run(stop)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if headend is not None:
            headend.store.close()


def _stop_event(seconds: float) -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if seconds:
        loop.call_later(seconds, stop.set)
    return stop


async def _story(scenario: Scenario, collector: Collector) -> None:
    try:
        await scenario.run()
    except MeterGatewayError as exc:  # a refused command or a broker gone: told, demo goes on
        collector.note(f"the story stopped: {exc}")


async def _refresh(collector: Collector, plain: PlainLines | None, options: RunOptions) -> None:
    if plain is not None:
        while True:
            await asyncio.sleep(REFRESH_S)
            plain.update(collector.snapshot())
    from rich.console import Console
    from rich.live import Live

    with Live(console=Console(), auto_refresh=False, redirect_stderr=False) as live:
        while True:
            with contextlib.suppress(MeterGatewayError):  # a busy store: the next refresh
                live.update(render(collector.snapshot(), console_hint=options.console_hint,
                                   width=live.console.width), refresh=True)
            await asyncio.sleep(REFRESH_S)
