"""A meter's own records in a DLMS poll: the load profile and the billing profile read from
where the gateway's marks end (Context.records_until) to now, in the poll's association, as
dated samples in the gateway's quantities, exact; every N polls; a refused profile leaves the
registers read."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from core.clock import FakeClock
from drivers.dlms.client import Authentication, Credentials
from drivers.dlms.cosem import ObjectValue, ProfileRow
from drivers.dlms.counters import CounterFile
from drivers.dlms.hdlc import Address
from drivers.dlms.read_profiles import read_profile
from drivers.dlms.reader import DlmsBus, MeterSettings
from drivers.dlms.records import (
    BILLING,
    LOAD_PROFILE,
    RecordReader,
    record_series,
    row_instant,
    zone_of,
)
from drivers.dlms.server import CosemServer
from drivers.dlms.sim import HdlcServerLink, LoopbackStream
from drivers.dlms.sim_objects import SimObjects
from drivers.readings import Sample

METER = Address(1, 17, 2)
PERIOD_MS = 900_000


class Marks:
    """The gateway's marks, as the service keeps them: the newest instant per series."""

    def __init__(self) -> None:
        self.marks: dict[tuple[str, str], int] = {}

    def until(self, meter: str, series: str) -> int | None:
        return self.marks.get((meter, series))

    def keep(self, meter: str, got: list[Sample]) -> None:
        for s in got:
            if s.at_ms is not None:
                key = (meter, s.series)
                self.marks[key] = max(s.at_ms, self.marks.get(key, s.at_ms))


def _setup(tmp_path: Path, clock: FakeClock,
           objects: SimObjects) -> tuple[DlmsBus, RecordReader, Marks]:
    far = HdlcServerLink(CosemServer(objects), METER)
    bus = DlmsBus(CounterFile(tmp_path / "c.json"), open_line=lambda: LoopbackStream(far))
    marks = Marks()
    return bus, RecordReader(marks.until, clock.wall_ms), marks


async def _poll(bus: DlmsBus, reader: RecordReader, opts: dict[str, object]) -> list[Sample]:
    settings = MeterSettings("m1", Credentials(Authentication.NONE), read_profile("generic"))
    due = reader.due("m1", record_series(settings.profile, opts))

    async def records(association: object) -> list[Sample]:
        return await reader.read(association, "m1", due, zone_of("UTC"))  # type: ignore[arg-type]

    return await bus.read_meter(settings, records if due else None)


def _series(got: list[Sample], series: str) -> dict[int, dict[str, Decimal | str]]:
    out: dict[int, dict[str, Decimal | str]] = {}
    for s in got:
        if s.series == series and s.at_ms is not None:
            out.setdefault(s.at_ms, {})[s.quantity] = s.value
    return out


async def test_rows_from_the_mark_to_now_as_exact_dated_samples(tmp_path: Path) -> None:
    clock = FakeClock()
    objects = SimObjects(clock.wall_ms)
    clock.step(3 * 24 * 3600)
    bus, reader, marks = _setup(tmp_path, clock, objects)
    first = await _poll(bus, reader, {})
    profile = _series(first, LOAD_PROFILE)
    assert len(profile) == 24 * 4 + 1  # no mark: the backfill window (24 h, both ends)
    expected = {int(when.timestamp() * 1000): Decimal(wh) / 1000
                for when, wh in objects.profile_rows()[-97:]}
    assert {at: v["import_active_energy"] for at, v in profile.items()} == expected
    assert any(s.at_ms is None and s.quantity == "import_active_energy" for s in first)
    billing = _series(first, BILLING)
    assert len(billing) == 12  # the simulator's 12 monthly closures, a year back
    rows = objects.billing_rows()
    assert [billing[int(w.timestamp() * 1000)] for w, _, _ in rows] == [
        {"import_active_energy": Decimal(imp) / 1000, "export_active_energy": Decimal(exp) / 100}
        for _, imp, exp in rows]
    marks.keep("m1", first)
    clock.step(2 * 3600 + 60)  # two hours without a read (an outage)
    again = await _poll(bus, reader, {})
    newer = _series(again, LOAD_PROFILE)
    assert sorted(newer) == [max(profile) + (i + 1) * PERIOD_MS for i in range(8)]
    assert _series(again, BILLING) == {}  # no new closure
    assert reader.counters[("m1", "records")] == 97 + 12 + 8


async def test_every_n_polls_and_a_refused_profile(tmp_path: Path) -> None:
    clock = FakeClock()
    objects = SimObjects(clock.wall_ms)
    bus, reader, marks = _setup(tmp_path, clock, objects)
    opts = {"load_profile_every": 3, "billing_obis": "0-0:98.2.0.255"}  # no such object
    dated = []
    for _ in range(7):
        got = await _poll(bus, reader, opts)
        assert any(s.quantity == "voltage_l1" for s in got)  # the registers in every poll
        dated.append(bool(_series(got, LOAD_PROFILE)))
        marks.keep("m1", got)
        clock.step(900)
    assert dated == [True, False, False, True, False, False, True]
    assert reader.counters[("m1", "record_errors")] == 7  # billing refused, asked every poll
    assert record_series(read_profile("generic"), {"load_profile_every": 0,
                                                   "billing_every": 0}) == ()


@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2090, 1, 1)),
       st.sampled_from([-120, -60, 0, 60, 330]), st.sampled_from(["UTC", "Europe/Oslo"]))
def test_a_row_with_a_deviation_is_absolute_whatever_the_zone(
        local: datetime, deviation: int, zone: str) -> None:
    local = local.replace(microsecond=0)
    offset = -deviation
    text = local.isoformat() + f"{'+' if offset >= 0 else '-'}{abs(offset) // 60:02d}:" \
                               f"{abs(offset) % 60:02d}"
    row = ProfileRow(local, text, (ObjectValue("1-0:1.8.0.255", Decimal(1), "Wh"),))
    expected = datetime.fromisoformat(text).astimezone(UTC)
    assert row_instant(row, zone_of(zone)) == round(expected.timestamp() * 1000)
    naive = ProfileRow(local, local.isoformat(), row.values)
    assert row_instant(naive, zone_of("UTC")) == round(
        local.replace(tzinfo=UTC).timestamp() * 1000)
