"""`eventually(check, deadline_s)`: wait for a condition, never for a fixed time.

A deadline bounds a wait that is broken, it is not a speed requirement: pick it generously for a
loaded two-core CI machine. `check` returns something truthy when the condition holds (that
value is returned) or raises AssertionError / returns a falsy value while it does not yet; at
the deadline the last AssertionError, or `what` with the last value, is raised.

`eventually()` blocks the calling thread (sync tests, hil tests driving processes, or code that
must stall the loop on purpose); `await eventually_async()` waits without blocking the loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# How often the condition is looked at: short against every deadline in the suite.
POLL_S = 0.05


class _Attempt:
    def __init__(self, check: Callable[[], T], what: str) -> None:
        self.check = check
        self.what = what
        self.last: object = None
        self.error: AssertionError | None = None

    def once(self) -> tuple[bool, object]:
        try:
            value = self.check()
        except AssertionError as exc:
            self.error = exc
            return False, None
        self.last, self.error = value, None
        return bool(value), value

    def failure(self, deadline_s: float) -> AssertionError:
        if self.error is not None:
            return AssertionError(f"{self.what}: not within {deadline_s} s: {self.error}")
        return AssertionError(f"{self.what}: not within {deadline_s} s (last: {self.last!r})")


def eventually(check: Callable[[], T], deadline_s: float, what: str = "condition",
               *, poll_s: float = POLL_S) -> T:
    """Call `check` until it holds (returns its value) or `deadline_s` passes (AssertionError)."""
    attempt = _Attempt(check, what)
    end = time.monotonic() + deadline_s
    while True:
        done, value = attempt.once()
        if done:
            return value  # type: ignore[return-value]
        if time.monotonic() >= end:
            raise attempt.failure(deadline_s)
        time.sleep(poll_s)


async def eventually_async(check: Callable[[], T], deadline_s: float, what: str = "condition",
                           *, poll_s: float = POLL_S) -> T:
    """`eventually` for a test on the loop: the loop keeps running between the checks."""
    attempt = _Attempt(check, what)
    end = time.monotonic() + deadline_s
    while True:
        done, value = attempt.once()
        if done:
            return value  # type: ignore[return-value]
        if time.monotonic() >= end:
            raise attempt.failure(deadline_s)
        await asyncio.sleep(poll_s)
