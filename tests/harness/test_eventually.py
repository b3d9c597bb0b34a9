"""eventually(): the value once the check holds, the last reason when the deadline passes."""

from __future__ import annotations

import itertools

import pytest

from tests.harness.eventually import eventually, eventually_async


def test_returns_the_first_truthy_value() -> None:
    calls = itertools.count()
    assert eventually(lambda: next(calls) >= 2 and "ready", 10, poll_s=0) == "ready"


def test_reports_the_last_assertion_at_the_deadline() -> None:
    def check() -> None:
        raise AssertionError("still 3 readings missing")

    with pytest.raises(AssertionError, match="stored readings: not within 0 s: still 3"):
        eventually(check, 0, "stored readings")


def test_reports_the_last_value_at_the_deadline() -> None:
    with pytest.raises(AssertionError, match=r"the outbox: not within 0 s \(last: 0\)"):
        eventually(lambda: 0, 0, "the outbox")


async def test_the_async_form_lets_the_loop_run_between_checks() -> None:
    calls = itertools.count()
    assert await eventually_async(lambda: next(calls) == 3, 10, poll_s=0) is True
