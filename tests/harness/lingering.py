"""No test may leave asyncio tasks or timer handles behind (a pytest plugin: root conftest.py).

The model is aioesphomeapi's `verify_no_lingering_tasks`: after the test and all its fixtures
have finished, a task still pending or a `call_later`/`call_at` handle still scheduled on the
test's loop fails the test (its teardown reports each one; they are cancelled first so the
loop closes cleanly). pytest-asyncio would otherwise cancel them silently when it closes the
loop, and a leak would show up only in the field, as a task that keeps a port, a file or a
thread alive. Sync tests that use no loop are not touched (no loop is made for them).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import pytest
import pytest_asyncio

T = TypeVar("T")
GUARD = "_no_lingering_tasks_guard"
# Cancelled leftovers get this long to finish before the loop closes (they are reported anyway).
CANCEL_WAIT_S = 5.0


def lingering_handles(loop: asyncio.AbstractEventLoop) -> list[asyncio.TimerHandle]:
    """Timer handles (`call_later`, `call_at`) still scheduled and not cancelled on `loop`.

    asyncio keeps them in the loop's private `_scheduled` heap; there is no public accessor
    (aioesphomeapi's and zigpy-znp's checks read it the same way).
    """
    scheduled: list[asyncio.TimerHandle] = getattr(loop, "_scheduled", [])
    return [handle for handle in scheduled if not handle.cancelled()]


def uses_a_loop(item: pytest.Item) -> bool:
    """A coroutine test, or one that requests an async fixture (both run on a test loop)."""
    function = getattr(item, "function", None)
    if function is not None and inspect.iscoroutinefunction(function):
        return True
    fixture_info = getattr(item, "_fixtureinfo", None)
    if fixture_info is None:
        return False
    return any(inspect.iscoroutinefunction(d.func) or inspect.isasyncgenfunction(d.func)
               for definitions in fixture_info.name2fixturedefs.values()
               for d in definitions)


async def leftovers(before: set[asyncio.Task[Any]]) -> list[str]:
    """Cancel what is left on the running loop beyond `before` (and this task); describe it."""
    loop = asyncio.get_running_loop()
    current = asyncio.current_task()
    tasks = {t for t in asyncio.all_tasks(loop) - before if t is not current and not t.done()}
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=CANCEL_WAIT_S)
    handles = lingering_handles(loop)
    for handle in handles:
        handle.cancel()
    return ([f"lingering task after test: {task!r}" for task in tasks]
            + [f"lingering timer handle after test: {handle!r}" for handle in handles])


@pytest_asyncio.fixture
async def _no_lingering_tasks_guard() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    problems = await leftovers(before)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def run_checked(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` for a sync test (a hypothesis example drives a loop of its own),
    failing like the guard when `main` leaves tasks or timer handles behind."""
    async def checked() -> T:
        result = await main
        problems = await leftovers(set())
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)
        return result
    return asyncio.run(checked())


@pytest.fixture(autouse=True)
def verify_no_lingering_tasks(request: pytest.FixtureRequest) -> None:
    """Fails a test that leaves asyncio tasks or timer handles behind (see the module doc).

    Autouse and first, so the guard is set up before the test's own fixtures and checks after
    all of them were torn down (a fixture that stops a server in its teardown is not a leak).
    """
    if uses_a_loop(request.node):
        request.getfixturevalue(GUARD)
