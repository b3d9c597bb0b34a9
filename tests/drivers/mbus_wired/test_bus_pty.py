"""The polled bus over the simulated wired M-Bus on a pty: reads by primary and secondary
address, multi-telegram meters, the baud switch, reset / select data, clock sync, an echoing
converter, counters per meter (timeouts, e5_missing, collisions), and the search over the pty."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
import serial

from drivers.errors import DriverError
from drivers.mbus_wired.address import SecondaryAddress
from drivers.mbus_wired.bus import MbusBus, MeterSettings
from drivers.mbus_wired.sim import SimBus, SimMeter
from drivers.mbus_wired.simpty import BusSim, load_frames, meters_from_frames
from drivers.readings import Sample
from drivers.transport.serial import SerialStream
from drivers.transport.stream import LineSettings
from tests.corpus import CORPUS
from tests.harness.eventually import eventually_async

FRAMES = load_frames(CORPUS / "mbus" / "frames.json")
ABB = [FRAMES["libmbus/abb_f95"]]
TECSON = [FRAMES["libmbus/tecson"]]
MULTI = [FRAMES["libmbus/ELV-Elvaco-CMa10"], FRAMES["libmbus/LGB_G350"]]
WALL_S = 1_700_000_000.0   # 2023-11-14T22:13:20Z
SEARCH_START_DEADLINE_S = 30.0   # bounds a broken wait, no speed requirement


def _opener(path: str) -> Callable[[int], Any]:
    async def open_stream(baud: int) -> SerialStream:
        port = serial.Serial(path, baud, parity="E", timeout=0)
        fd = os.dup(port.fileno())
        port.close()
        return SerialStream(fd, LineSettings(baud, 8, "E", 1), name=path, protocol="mbus")
    return open_stream


@pytest.fixture
async def line() -> AsyncIterator[Callable[..., MbusBus]]:
    """`line(meters, converter=False, **bus_kwargs)`: a bus on a fresh simulated pair (an
    echoing converter with `converter=True`)."""
    sims: list[BusSim] = []
    buses: list[MbusBus] = []

    def make(meters: list[SimMeter], converter: bool = False, **kwargs: Any) -> MbusBus:
        sim = BusSim(SimBus(meters, echo=converter), paced=False).__enter__()
        sims.append(sim)
        bus = MbusBus(_opener(sim.port_path), wall_s=lambda: WALL_S, **kwargs)
        buses.append(bus)
        return bus
    yield make
    for bus in buses:
        await bus.close()
    for sim in sims:
        sim.close()


async def test_reads_by_primary_and_secondary_address_exactly(line: Any) -> None:
    meters = meters_from_frames([ABB, TECSON], 2, seed=3, primaries=True)
    bus = line(meters)
    by_primary = await bus.read_meter("abb", MeterSettings(1))
    by_secondary = await bus.read_meter("tecson", MeterSettings(meters[1].secondary))
    assert Sample("volume", Decimal("0.0742"), "m3") in by_primary        # libmbus: 0.074200
    assert Sample("flow_temperature", Decimal("20.4"), "C") in by_primary
    assert Sample("volume", Decimal("45.60"), "m3") in by_secondary       # libmbus: 45.600000
    assert bus.counters("abb") == {"reads_ok": 1, "telegrams": 1}


async def test_multi_telegram_meter_is_read_to_its_last_telegram(line: Any) -> None:
    meters = meters_from_frames([MULTI], 1, seed=4)
    bus = line(meters)
    samples = await bus.read_meter("elvaco", MeterSettings(meters[0].secondary))
    assert Sample("external_temperature", Decimal("20.94"), "C") in samples
    assert Sample("error_flags", "00", "") in samples                     # second telegram
    assert bus.counters("elvaco")["telegrams"] == 2


async def test_a_meter_too_many_telegrams_long_fails_and_is_counted(line: Any) -> None:
    meters = meters_from_frames([MULTI], 1, seed=4)
    bus = line(meters)
    with pytest.raises(DriverError, match="more than 1 telegrams"):
        await bus.read_meter("elvaco", MeterSettings(meters[0].secondary, max_telegrams=1))
    assert bus.counters("elvaco") == {"frame_errors": 1}


async def test_baud_switch_when_the_meter_is_silent_at_its_configured_baud(line: Any) -> None:
    meters = meters_from_frames([ABB], 1, seed=5, primaries=True)
    bus = line(meters, baud=2400)
    settings = MeterSettings(1, baud=9600)
    await bus.read_meter("abb", settings)
    assert meters[0].baud == 9600
    await bus.read_meter("abb", settings)   # now at once, no second switch
    assert bus.counters("abb") == {"reads_ok": 2, "telegrams": 2, "baud_switches": 1}


async def test_reset_select_data_and_clock_sync(line: Any) -> None:
    meters = meters_from_frames([ABB], 1, seed=6)
    bus = line(meters)
    settings = MeterSettings(meters[0].secondary, select_data=0x10, clock_sync=True,
                             utc_offset_min=60)
    await bus.read_meter("abb", settings)
    await bus.read_meter("abb", settings)   # the clock is set once a day, not every read
    assert meters[0].clock == datetime(2023, 11, 14, 23, 13)
    assert bus.counters("abb")["clock_syncs"] == 1


async def test_silent_and_unselectable_meters_are_counted_by_kind(line: Any) -> None:
    meters = meters_from_frames([ABB], 2, seed=7, primaries=True)
    meters[0].silent = True
    bus = line(meters, attempts=1)
    with pytest.raises(DriverError):
        await bus.read_meter("gone", MeterSettings(1))
    with pytest.raises(DriverError):
        await bus.read_meter("unknown", MeterSettings(SecondaryAddress("00000001", 0x1234, 1, 7)))
    assert bus.counters("gone") == {"timeouts": 1}
    assert bus.counters("unknown") == {"e5_missing": 1}


async def test_two_meters_on_one_primary_address_collide(line: Any) -> None:
    meters = meters_from_frames([ABB, TECSON], 2, seed=8)
    for meter in meters:
        meter.primary = 9
    bus = line(meters, attempts=1)
    with pytest.raises(DriverError):
        await bus.read_meter("twins", MeterSettings(9))
    assert bus.counters("twins") == {"checksum": 1}


async def test_echoing_converter_with_echo_on(line: Any) -> None:
    meters = meters_from_frames([TECSON], 1, seed=9, primaries=True)
    bus = line(meters, converter=True, echo="on")
    samples = await bus.read_meter("tecson", MeterSettings(1))
    assert Sample("volume", Decimal("45.60"), "m3") in samples


async def test_echo_on_without_an_echo_is_counted(line: Any) -> None:
    meters = meters_from_frames([TECSON], 1, seed=9, primaries=True)
    bus = line(meters, echo="on", attempts=1)
    with pytest.raises(DriverError, match="did not echo"):
        await bus.read_meter("tecson", MeterSettings(1))
    assert bus.counters("tecson") == {"echo_missing": 1}


async def test_search_and_primary_scan_over_the_pty(line: Any) -> None:
    meters = meters_from_frames([ABB, TECSON, MULTI], 6, seed=10, primaries=True)
    bus = line(meters, converter=True)
    result = await bus.search()
    assert sorted(m.address.text() for m in result.meters) == sorted(
        m.secondary.text() for m in meters)
    scan = await bus.scan_primary(range(0, 10))
    assert scan.answered == [1, 2, 3, 4, 5, 6]


async def test_a_search_cut_short_carries_on_where_it_stopped(line: Any) -> None:
    meters = meters_from_frames([ABB, TECSON], 5, seed=13)
    bus = line(meters)
    result = await bus.search(seconds=0.5)
    assert result.timed_out and result.pending
    for _ in range(200):   # each step probes at least the pattern it stopped in
        if result.done:
            break
        result = await bus.search(seconds=1.0, resume=True)
    found = [m.address.text() for m in result.meters]
    assert sorted(found) == sorted(m.secondary.text() for m in meters)   # each once
    fresh = await bus.search(resume=True)   # a finished search is not resumed: a new walk
    assert len(fresh.meters) == len(meters) and fresh is not result


async def test_a_poll_waits_for_one_probe_of_a_search_not_the_whole_search(line: Any) -> None:
    meters = meters_from_frames([ABB, TECSON], 6, seed=15, primaries=True)
    bus = line(meters)
    searching = asyncio.create_task(bus.search())
    await eventually_async(lambda: bus.last_search is not None and bus.last_search.probes,
                           SEARCH_START_DEADLINE_S, "the search under way")
    samples = await bus.read_meter("abb", MeterSettings(1))
    assert not searching.done()   # the poll went between two probes
    result = await searching
    assert Sample("volume", Decimal("0.0742"), "m3") in samples
    assert len(result.meters) == 6
