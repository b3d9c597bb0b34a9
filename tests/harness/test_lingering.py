"""The leak guard itself: a leaked task, a leaked timer and a never-awaited coroutine fail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # `pytester` is enabled by the root conftest.py

PROBE = '''
import asyncio

async def test_leaks_a_task():
    asyncio.create_task(asyncio.sleep(100))

async def test_leaks_a_timer():
    asyncio.get_running_loop().call_later(100, print)

async def test_never_awaits_a_coroutine():
    asyncio.sleep(1)

async def test_cleans_up():
    task = asyncio.create_task(asyncio.sleep(100))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

def test_sync_without_a_loop():
    pass

def test_sync_running_a_leaking_loop():
    from tests.harness.lingering import run_checked

    async def leak():
        asyncio.create_task(asyncio.sleep(100))

    run_checked(leak())
'''

INI = '''
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings =
    error::RuntimeWarning
    error::pytest.PytestUnraisableExceptionWarning
'''


def test_the_guard_fails_leaks_and_passes_clean_tests(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    pytester.makeini(INI)
    pytester.makeconftest('pytest_plugins = ["tests.harness.lingering"]\n')
    pytester.makepyfile(test_probe=PROBE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, errors=2, failed=2)
    result.stdout.fnmatch_lines(["*lingering task after test*", "*lingering timer handle*"])
