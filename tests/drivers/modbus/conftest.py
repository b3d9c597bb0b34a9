"""Fail any Modbus test that leaves asyncio tasks running (a leaked poller or server handler)."""

import asyncio
from collections.abc import AsyncIterator

import pytest

SETTLE_ROUNDS = 5  # loop turns for cancelled tasks to finish before we look


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    for _ in range(SETTLE_ROUNDS):
        await asyncio.sleep(0)
    current = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
    assert not leaked, f"leaked tasks: {leaked}"
