"""The fuzz harness itself: every target runs a few hundred inputs (fixed seed) without a crash,
and the harness finds, classifies and shrinks a planted crash."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from drivers.errors import FrameError
from tests.fuzz.harness import Runner, Target
from tests.fuzz.targets import TARGETS, budget

SMOKE_INPUTS = 300
SEED = 20261204


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    logging.disable(logging.CRITICAL)  # parsers log every refusal; not what is tested here
    yield
    logging.disable(logging.NOTSET)


# method="thread": the harness owns SIGALRM for its per-input timeout
@pytest.mark.timeout(300, method="thread")
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_runs_without_crash(name: str) -> None:
    result = Runner(TARGETS[name], SEED).run(SMOKE_INPUTS)
    assert result.inputs == SMOKE_INPUTS
    found = {sig: crash.data[:100].hex() for sig, crash in result.crashes.items()}
    assert not found, f"{name}: crashes (signature -> minimal input hex): {found}"


def _planted(data: bytes) -> str:
    if b"X" in data:
        raise KeyError("planted")
    if b"!" in data:
        raise FrameError("a refusal from the project's tree is not a crash")
    return "ok"


@pytest.mark.timeout(60, method="thread")
def test_planted_crash_is_found_and_shrunk() -> None:
    target = Target("planted", lambda: [b"abc!def", b"abcXdef"], _planted)
    result = Runner(target, SEED).run(50)
    (crash,) = result.crashes.values()
    assert crash.exception == "KeyError"
    assert crash.data == b"X"
    assert result.outcomes["FrameError"] >= 1


def test_budget_splits_the_total_exactly() -> None:
    shares = budget(1_000_000, sorted(TARGETS))
    assert sum(shares.values()) == 1_000_000
    assert min(shares.values()) > 10_000
