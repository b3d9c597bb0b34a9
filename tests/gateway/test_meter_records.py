"""A meter's own records (a load profile, billing closures: `Sample.at_ms`) go through the
service as reading sets of their own instant, flagged, each stored once however often the
meter hands it over, with the mark of their series kept across a restart; prepay charges only
the values read now."""

from __future__ import annotations

import asyncio
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.schema import req
from drivers.plugin import Context, CounterSpec, ProtocolPlugin
from drivers.readings import Sample
from gateway.app.meter_records import FUTURE_TOLERANCE_MS, MAX_RECORDS_PER_READ, MeterRecords
from gateway.app.service import Service
from gateway.config.loader import load_config
from gateway.wiring import protocols
from storage.records import FLAG_METER_RECORD
from storage.store import Store
from tests.harness.eventually import eventually_async
from tests.harness.lingering import run_checked

BASE_MS = 1_700_000_100_000
STEP_MS = 900_000  # a 15-minute profile
DEADLINE_S = 20.0  # bounds a broken wait, not a speed requirement


def profile_sample(i: int, series: str = "load_profile") -> Sample:
    return Sample("import_active_energy", Decimal(1000 + i), "kWh", BASE_MS + i * STEP_MS,
                  series)


class ProfileBus:
    """A meter that hands over its whole profile buffer at every read (as some do), growing
    by one interval per read, beside one value read now; it notes where the gateway said its
    records end."""

    def __init__(self, bus: Any, context: Context) -> None:
        self.context, self.reads, self.asked_from = context, 0, []

    async def read(self, meter: Any) -> list[Sample]:
        self.reads += 1
        self.asked_from.append(self.context.records_until(meter.id, "load_profile"))
        buffer = [profile_sample(i) for i in range(self.reads + 2)]
        return [Sample("voltage_l1", Decimal("230.1"), "V"), *buffer]

    def counters(self, meter_id: str) -> dict[str, int]:
        return {"reads": self.reads}

    async def close(self) -> None:
        pass


PLUGIN = ProtocolPlugin(name="profiled", kind="polled", meter_fields={"address": req(int)},
                        counters=CounterSpec(ok="reads"), open_polled=ProfileBus)

SITE = """
gateway_id = "gw-rec"
[storage]
path = "gw.db"
commit_interval_ms = 50
[board]
state_dir = "board"
[[bus]]
id = "line"
port = "/dev/ttyREC0"
[[meter]]
id = "pm-1"
bus = "line"
protocol = "profiled"
address = 1
poll_interval_s = 1
"""


@pytest.fixture
def profiled(monkeypatch: pytest.MonkeyPatch) -> ProtocolPlugin:
    monkeypatch.setattr(protocols, "PLUGINS", (*protocols.PLUGINS, PLUGIN))
    return PLUGIN


async def _run_until(service: Service, reads: int) -> ProfileBus:
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        bus = await eventually_async(lambda: service.buses.get("line"), DEADLINE_S, "the bus")
        await eventually_async(lambda: bus.reads >= reads and not service.writer.pending,
                               DEADLINE_S, f"{reads} reads committed")
        # the plugin asks the service's own clock state whether it may set a meter's clock
        for synced in (True, False):
            service.clock_synced = lambda synced=synced: synced  # type: ignore[misc]
            assert bus.context.clock_synced() is synced
        return bus  # type: ignore[no-any-return]
    finally:
        stop.set()
        await task


def _stored(db: Path) -> tuple[list[tuple[int, int, str]], dict[tuple[str, str], int]]:
    store = Store.open(db)
    try:
        rows = store.readings_between("pm-1", 0, 2**62)
        return ([(r.ts_ms, r.flags, str(r.values[0].value)) for r in rows],
                store.meter_record_marks())
    finally:
        store.close()


def test_records_are_stored_once_across_reads_and_a_restart(
        tmp_path: Path, profiled: ProtocolPlugin) -> None:
    site = tmp_path / "site.toml"
    site.write_text(textwrap.dedent(SITE))
    first = run_checked(_run_until(Service(load_config(site)), 3))
    assert first.asked_from[0] is None  # nothing held yet
    rows, marks = _stored(tmp_path / "gw.db")
    records = [(ts, value) for ts, flags, value in rows if flags & FLAG_METER_RECORD]
    held = first.reads + 2
    assert records == [(BASE_MS + i * STEP_MS, str(1000 + i)) for i in range(held)]
    assert [v for _, flags, v in rows if not flags & FLAG_METER_RECORD] == ["230.1"] * first.reads
    assert marks == {("pm-1", "load_profile"): BASE_MS + (held - 1) * STEP_MS}
    # a restart: the plugin is told where the stored records end, and nothing is stored twice
    second = run_checked(_run_until(Service(load_config(site)), 1))
    assert second.asked_from[0] == marks[("pm-1", "load_profile")]
    rows, _ = _stored(tmp_path / "gw.db")
    stamps = [ts for ts, flags, _ in rows if flags & FLAG_METER_RECORD]
    assert stamps == sorted(set(stamps)) and len(stamps) == max(held, second.reads + 2)


def test_prepay_charges_only_the_values_read_now() -> None:
    from gateway.wiring.prepay import PrepayWiring

    seen: list[list[Any]] = []
    wiring = object.__new__(PrepayWiring)
    wiring.engine = type("Engine", (), {"on_readings": lambda _s, _tx, sets: seen.append(sets)})()
    records = MeterRecords({})
    live, kept = records.split("pm-1", [Sample("import_active_energy", Decimal(5), "kWh"),
                                        profile_sample(1)], NOW_MS, 0)
    assert live is not None
    wiring.charge(None, [*kept, live])
    assert seen == [[live]]
    wiring.charge(None, kept)  # records alone: nothing to charge
    assert seen == [[live]]


NOW_MS = BASE_MS + 100 * STEP_MS  # after every record the tests make


@given(st.lists(st.tuples(st.sampled_from(["load_profile", "billing"]), st.integers(0, 40)),
                max_size=30),
       st.lists(st.tuples(st.sampled_from(["load_profile", "billing"]), st.integers(0, 40)),
                max_size=30))
def test_split_keeps_each_record_once_and_in_order(first: list[tuple[str, int]],
                                                   again: list[tuple[str, int]]) -> None:
    records = MeterRecords({})
    stored: list[tuple[str, int]] = []
    expected: set[tuple[str, int]] = set()  # what is newer than its series' mark when read
    for read in (first, first + again):
        marks = {s: max((i for t, i in expected if t == s), default=-1) for s, _ in read}
        expected |= {(s, i) for s, i in read if i > marks[s]}
        live, kept = records.split("m", [Sample("voltage_l1", Decimal(1), "V"),
                                         *(profile_sample(i, s) for s, i in read)], NOW_MS, 0)
        assert live is not None and live.values[0].quantity == "voltage_l1"
        assert all(r.flags & FLAG_METER_RECORD and r.series for r in kept)
        assert [r.ts_ms for r in kept] == sorted(r.ts_ms for r in kept)
        for record in kept:
            records.accepted(record)
        stored += [(r.series, (r.ts_ms - BASE_MS) // STEP_MS) for r in kept]
    assert len(stored) == len(set(stored))  # nothing twice
    assert set(stored) == expected  # and nothing newer than the mark lost
    for series in ("load_profile", "billing"):
        newest = max((i for s, i in expected if s == series), default=None)
        assert records.until("m", series) == (None if newest is None
                                              else BASE_MS + newest * STEP_MS)


def test_records_without_a_series_or_dated_ahead_are_refused_not_marked(
        caplog: pytest.LogCaptureFixture) -> None:
    records = MeterRecords({})
    ahead = Sample("volume", Decimal(1), "m3", NOW_MS + FUTURE_TOLERANCE_MS + 1, "load_profile")
    nameless = Sample("volume", Decimal(1), "m3", BASE_MS, "")
    for _ in range(2):
        live, kept = records.split("m", [ahead, nameless, profile_sample(3)], NOW_MS, 0)
        assert live is None and [r.ts_ms for r in kept] == [BASE_MS + 3 * STEP_MS]
    assert records.refused == 4 and records.until("m", "load_profile") is None
    warned = [r for r in caplog.records if r.message == "meter_record_refused"]
    assert len(warned) == 2  # once per meter and problem


def test_a_long_backfill_comes_over_several_reads_oldest_first() -> None:
    records = MeterRecords({})
    buffer = [profile_sample(i) for i in range(MAX_RECORDS_PER_READ + 500)]
    _, first = records.split("m", buffer, NOW_MS + 10**10, 0)
    assert [r.ts_ms for r in first] == [s.at_ms for s in buffer[:MAX_RECORDS_PER_READ]]
    for record in first:
        records.accepted(record)
    _, rest = records.split("m", buffer, NOW_MS + 10**10, 0)
    assert [r.ts_ms for r in rest] == [s.at_ms for s in buffer[MAX_RECORDS_PER_READ:]]


def test_resync_goes_back_to_the_store_and_past_the_buffered_records() -> None:
    records = MeterRecords({("m", "load_profile"): BASE_MS})
    _, kept = records.split("m", [profile_sample(i) for i in range(1, 5)], NOW_MS, 0)
    for record in kept:
        records.accepted(record)
    assert records.until("m", "load_profile") == BASE_MS + 4 * STEP_MS
    # the commit of records 1..2 failed (store full) and 3..4 still wait in the buffer
    records.resync({("m", "load_profile"): BASE_MS}, kept[2:])
    assert records.until("m", "load_profile") == BASE_MS + 4 * STEP_MS
    records.resync({("m", "load_profile"): BASE_MS}, [])  # and nothing buffered
    assert records.until("m", "load_profile") == BASE_MS
