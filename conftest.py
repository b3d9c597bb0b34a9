"""Fixtures for every test under tests/ and hil/.

No test may leave asyncio tasks or timer handles behind (the model is aioesphomeapi's
`verify_no_lingering_tasks`): after the test and all its fixtures have finished, a task still
pending or a `call_later`/`call_at` handle still scheduled on the test's loop fails the test.
pytest-asyncio would otherwise cancel them silently when it closes the loop, and a leak would
show up only as a task that keeps a port, a file or a thread alive in the field.

RuntimeWarnings (a coroutine never awaited) are errors (pyproject.toml `filterwarnings`).
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `tests.` and `hil.` importable
from tests.harness.lingering import lingering_handles

pytest_plugins = ["tests.harness.broker"]  # the one `broker` fixture
GUARD = "_no_lingering_tasks_guard"


def _uses_a_loop(item: pytest.Item) -> bool:
    function = getattr(item, "function", None)
    if function is not None and inspect.iscoroutinefunction(function):
        return True
    fixture_info = getattr(item, "_fixtureinfo", None)
    if fixture_info is None:
        return False
    for definitions in fixture_info.name2fixturedefs.values():
        for definition in definitions:
            func = definition.func
            if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func):
                return True
    return False


@pytest_asyncio.fixture
async def _no_lingering_tasks_guard() -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    before = asyncio.all_tasks(loop)
    yield
    current = asyncio.current_task()
    tasks = {t for t in asyncio.all_tasks(loop) - before if t is not current and not t.done()}
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=5)
    handles = lingering_handles(loop)
    for handle in handles:
        handle.cancel()
    problems = [f"lingering task after test: {task!r}" for task in tasks]
    problems += [f"lingering timer handle after test: {handle!r}" for handle in handles]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(autouse=True)
def verify_no_lingering_tasks(request: pytest.FixtureRequest) -> None:
    """Fails a test that leaves asyncio tasks or timer handles behind (see the module doc)."""
    if _uses_a_loop(request.node):
        request.getfixturevalue(GUARD)
