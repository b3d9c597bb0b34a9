"""What a test left on its event loop (used by the root conftest.py guard)."""

from __future__ import annotations

import asyncio


def lingering_handles(loop: asyncio.AbstractEventLoop) -> list[asyncio.TimerHandle]:
    """Timer handles (`call_later`, `call_at`) still scheduled and not cancelled on `loop`.

    asyncio keeps them in the loop's private `_scheduled` heap; there is no public accessor
    (aioesphomeapi's and zigpy-znp's checks read it the same way).
    """
    scheduled: list[asyncio.TimerHandle] = getattr(loop, "_scheduled", [])
    return [handle for handle in scheduled if not handle.cancelled()]
