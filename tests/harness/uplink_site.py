"""A head-end and a gateway Uplink in-process over one broker (tests/uplink, tests/headend)."""

import asyncio
import contextlib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage.store import Store
from uplink.commands import CommandRegistry
from uplink.headend.server import HeadEnd
from uplink.headend.store import HeadendStore
from uplink.service import Uplink
from uplink.settings import UplinkSettings

GW = "gw-test"


def fast_settings(url: str, **overrides: object) -> UplinkSettings:
    """Settings with short intervals and backoff so tests recover quickly."""
    fields: dict[str, object] = {"gateway_id": GW, "broker_url": url, "batch_interval_s": 0.05,
                                 "backoff_min_s": 0.05, "backoff_max_s": 0.5,
                                 "ack_timeout_s": 5.0}
    fields.update(overrides)
    return UplinkSettings(**fields)  # type: ignore[arg-type]


class Site:
    """Start with `await site.start()`, stop with `await site.stop()`."""

    def __init__(self, url: str, store: Store, gw_key: Ed25519PrivateKey,
                 server_key: Ed25519PrivateKey, headend_db: Path, **overrides: object) -> None:
        self.hstore = HeadendStore(headend_db)
        self.headend = HeadEnd(self.hstore, {GW: gw_key.public_key()}, server_key,
                               broker_url=url)
        self.commands = CommandRegistry()
        self.uplink = Uplink(store, fast_settings(url, **overrides), gw_key,
                             server_key.public_key(), self.commands)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> "Site":
        self._tasks = [asyncio.create_task(self.headend.run()),
                       asyncio.create_task(self.uplink.run())]
        await self.headend.wait_connected()
        await self.uplink.wait_connected()
        return self

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.hstore.close()

    async def drained(self, timeout: float = 30.0) -> None:
        assert await self.uplink.flush(timeout), self.uplink.state()
