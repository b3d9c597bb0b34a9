"""Shared fixtures: simulated meters from the public corpus and a port factory for them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import serial

from drivers.iec62056.sim import SimMeter, meter_from_fixture
from tests.corpus import CORPUS

READOUTS = str(CORPUS / "iec62056/readouts.json")
E650_INDEX = 4  # Landis+Gyr E650: mode C, offers 4800 baud, meter time and date


def e650(**kwargs: Any) -> SimMeter:
    return meter_from_fixture(READOUTS, E650_INDEX, **kwargs)


def port_factory(path: str) -> Callable[[int], Any]:
    """What the lead's board.open_serial gives: a pyserial port at 7E1, opened at `baud`."""

    def open_port(baud: int) -> serial.Serial:
        return serial.Serial(path, baud, bytesize=serial.SEVENBITS, parity=serial.PARITY_EVEN,
                             stopbits=serial.STOPBITS_ONE, timeout=0)

    return open_port


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running behind it."""
    before = asyncio.all_tasks()
    yield
    leaked = [t for t in asyncio.all_tasks() - before if not t.done()]
    leaked = [t for t in leaked if t is not asyncio.current_task()]
    assert not leaked, f"leaked tasks: {leaked}"
