"""Whole-system: the real `gateway run` reads a simulated IEC 60870-5-102 meter over a pty
(serial) and over TCP, and stores its integrated totals, tariff registers, hourly load profile,
billing closures and events exactly, each record once, catching up the profile the meter kept
while it was silent and while the gateway was stopped.

The simulated meter's clock runs SPEED times faster than the wall (an hour of profile every
HOUR_REAL_S seconds) from two days back, so hours of profile pass within the test; the meter
stays in the past of the gateway's clock, and its drift limit is set beyond it (no clock set).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from drivers.iec102.objects import Event
from drivers.iec102.sim import QUARTER, SimMeter, absolute, default_events
from drivers.iec102.simhost import PtySim, TcpSimThread
from drivers.iec102.timetags import TimeB
from storage.records import FLAG_METER_RECORD, ReadingSet
from storage.store import Store
from tests.harness.eventually import eventually
from tests.harness.gateway_process import GatewayProcess, query

GATEWAY = Path(sys.executable).with_name("gateway")
MADRID = ZoneInfo("Europe/Madrid")
FIRST_READING_DEADLINE_S = 60.0
SPEED = 1200                       # meter seconds per wall second
HOUR_REAL_S = 3600 / SPEED         # 3 s of wall time per hour of profile
GAP_HOURS = 3                      # hours of profile the meter keeps during each gap
CATCH_UP_DEADLINE_S = 90.0         # bounds a broken wait, not a speed requirement
HOUR = dt.timedelta(hours=1)


class FastClock:
    """The simulated meter's wall clock (naive, Madrid): two days back, running SPEED times."""

    def __init__(self) -> None:
        self.start = (dt.datetime.now(MADRID).replace(tzinfo=None) - dt.timedelta(days=2))
        self.t0 = time.monotonic()

    def __call__(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=(time.monotonic() - self.t0) * SPEED)


def _meter(clock: FastClock) -> SimMeter:
    origin = (clock.start - dt.timedelta(days=40)).replace(hour=0, minute=0, second=0,
                                                           microsecond=0)
    return SimMeter(3, 7, 1234, origin, clock, events=default_events(origin))


def _config(tmp_path: Path, bus: str) -> Path:
    config = tmp_path / "gateway.toml"
    config.write_text(textwrap.dedent(f"""
        gateway_id = "gw-hil-102"
        timezone = "Europe/Madrid"

        [storage]
        path = "{tmp_path / 'gw.db'}"
    """) + bus + textwrap.dedent("""
        [[meter]]
        id = "ree-1"
        bus = "line"
        protocol = "iec102"
        address = 3
        measuring_point = 7
        password = 1234
        poll_interval_s = 1
        timeout_ms = 2000
        profile_backfill_h = 6
        event_records = [52]
        clock_drift_limit_s = 100000000
    """))
    return config


def _ms(wall: dt.datetime) -> int:
    return int(wall.replace(tzinfo=MADRID).timestamp() * 1000)


def _wall(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, MADRID).replace(tzinfo=None)


def _mark(db: Path, series: str) -> int | None:
    if not db.exists():
        return None
    try:
        rows = query(db, "SELECT r.until_ms FROM meter_records r JOIN meters m ON m.mid = "
                         "r.meter WHERE m.id = 'ree-1' AND r.series = ?", (series,))
    except Exception:   # created, not migrated yet
        return None
    return int(rows[0][0]) if rows else None


def _profile_reaches(gateway: GatewayProcess | None, db: Path, hour: dt.datetime) -> None:
    """Wait until the stored profile reaches `hour` (meter wall time)."""
    def reached() -> bool:
        if gateway is not None:
            gateway.assert_running()
        mark = _mark(db, "load_profile")
        return mark is not None and mark >= _ms(hour)
    eventually(reached, CATCH_UP_DEADLINE_S, f"profile stored up to {hour}")


def _hour_after(clock: FastClock, hours: int) -> dt.datetime:
    """The profile hour that ends `hours` after the meter's clock now."""
    return (clock() + HOUR * hours).replace(minute=0, second=0, microsecond=0)


def _stored(db: Path) -> list[ReadingSet]:
    store = Store.open(db)
    try:
        return store.readings_between("ree-1", 0, 2**62)
    finally:
        store.close()


def _check_now(reading: ReadingSet, meter: SimMeter) -> None:
    """The values read now: totals of the last closed hour, the current period's tariffs."""
    values = {v.quantity: v.value for v in reading.values}
    clock = dt.datetime.fromisoformat(str(values["meter_datetime"])).replace(tzinfo=None)
    quarters = (clock.replace(minute=0, second=0, microsecond=0) - meter.origin) // QUARTER
    assert values["import_active_energy"] == Decimal(absolute(1, quarters))
    assert values["reactive_energy_q1"] == Decimal(absolute(3, quarters))
    assert values["reactive_energy_q4"] == Decimal(absolute(6, quarters))
    assert values["max_demand_active_power_t1"] == Decimal(42000)
    assert "import_active_energy_t1" in values and "import_active_energy_t2" in values


def _check_profile(records: list[ReadingSet], meter: SimMeter, first: dt.datetime,
                   last: dt.datetime) -> None:
    """Every hour from the backfill's start (at or after `first`: the meter's clock moves on
    while the gateway starts) to at least `last`, once each, in order, every total exact."""
    profile = [r for r in records if "import_active_energy" in {v.quantity for v in r.values}
               and "billing_date" not in {v.quantity for v in r.values}]
    hours = [_wall(r.ts_ms) for r in profile]
    assert first <= hours[0] <= first + HOUR * 6 and hours[-1] >= last, (hours[0], hours[-1])
    assert hours == [hours[0] + HOUR * i for i in range(len(hours))], "a gap or a repeat"
    for reading, end in zip(profile, hours, strict=True):
        quarters = (end - meter.origin) // QUARTER
        assert {v.quantity: v.value for v in reading.values} == {
            name: Decimal(absolute(address, quarters)) for address, name in (
                (1, "import_active_energy"), (2, "export_active_energy"),
                (3, "reactive_energy_q1"), (4, "reactive_energy_q2"),
                (5, "reactive_energy_q3"), (6, "reactive_energy_q4"))}


def _check_closures(records: list[ReadingSet], meter: SimMeter) -> None:
    """The closed months since the meter's origin, once each, at the month's end."""
    closures = [r for r in records if "billing_date" in {v.quantity for v in r.values}]
    ends = [_wall(r.ts_ms) for r in closures]
    assert ends == [end for _, end in meter._months()]   # every closed month, once
    for reading, end in zip(closures, ends, strict=True):
        values = {v.quantity: v.value for v in reading.values}
        total = absolute(1, (end - meter.origin) // QUARTER)
        assert values["import_active_energy"] == Decimal(total)
        assert values["import_active_energy_t1"] == Decimal(total - total // 3)
        assert values["import_active_energy_t2"] == Decimal(total // 3)
        assert values["max_demand_active_power_t2"] == Decimal(17000)
        assert str(values["max_demand_time_t1"]).endswith("T09:15:00+01:00")


@pytest.mark.parametrize("transport", ["serial", "tcp"])
def test_gateway_process_stores_a_102_meter_exactly(tmp_path: Path, transport: str) -> None:
    clock = FastClock()
    meter = _meter(clock)
    db = tmp_path / "gw.db"
    host: PtySim | TcpSimThread = PtySim(meter) if transport == "serial" else TcpSimThread(meter)
    with host:
        if isinstance(host, PtySim):
            bus = f'\n[[bus]]\nid = "line"\nport = "{host.port_path}"\nbaudrate = 9600\n'
        else:
            bus = f'\n[[bus]]\nid = "line"\nkind = "tcp"\nhost = "127.0.0.1"\n' \
                  f'tcp_port = {host.port}\n'
        config = _config(tmp_path, bus)
        first = _hour_after(clock, -6)
        # a supply failure and its end, each in the meter's records during one of the runs
        failure = Event(3, 1, True, TimeB.of(_hour_after(clock, 1) + dt.timedelta(seconds=7)))
        back = Event(3, 1, False, TimeB.of(_hour_after(clock, 7) + dt.timedelta(seconds=9)))
        meter.events += [failure, back]
        with GatewayProcess(config, tmp_path / "gateway.log") as gateway:
            gateway.wait_for_readings(db, ["ree-1"], at_least=1,
                                      deadline_s=FIRST_READING_DEADLINE_S)
            # the meter silent while GAP_HOURS of profile pass, then heard again
            meter.silent = True
            silent_until = _hour_after(clock, GAP_HOURS)
            eventually(lambda: clock() > silent_until, CATCH_UP_DEADLINE_S, "the silent hours")
            held = _mark(db, "load_profile")
            assert held is not None and _ms(silent_until) - held >= 2 * 3_600_000, "no gap"
            meter.silent = False
            _profile_reaches(gateway, db, silent_until)
            assert gateway.stop() == 0, gateway.log_tail()
        stopped_until = _hour_after(clock, GAP_HOURS)   # the gateway stopped meanwhile
        eventually(lambda: clock() > stopped_until, CATCH_UP_DEADLINE_S, "the stopped hours")
        held = _mark(db, "load_profile")
        assert held is not None and _ms(stopped_until) - held >= 2 * 3_600_000, "no gap"
        with GatewayProcess(config, tmp_path / "gateway2.log") as gateway:
            _profile_reaches(gateway, db, stopped_until)
            assert gateway.stop() == 0, gateway.log_tail()
    readings = _stored(db)
    records = [r for r in readings if r.flags & FLAG_METER_RECORD]
    now = [r for r in readings if not r.flags & FLAG_METER_RECORD]
    _check_now(now[-1], meter)
    _check_profile(records, meter, first, stopped_until)
    _check_closures(records, meter)
    events = [r for r in records if r.values[0].quantity.startswith("meter_event_")]
    assert [(_ms(e.time.wall()), "start" if e.spi else "end") for e in (failure, back)] == [
        (r.ts_ms, r.values[0].value) for r in events]   # each once, across the restart


def test_readings_command_shows_the_records(tmp_path: Path) -> None:
    """`gateway readings` lists a record with its own instant, as it stores it."""
    clock = FastClock()
    meter = _meter(clock)
    with TcpSimThread(meter) as host:
        bus = f'\n[[bus]]\nid = "line"\nkind = "tcp"\nhost = "127.0.0.1"\ntcp_port = {host.port}\n'
        config = _config(tmp_path, bus)
        with GatewayProcess(config, tmp_path / "gateway.log") as gateway:
            _profile_reaches(gateway, tmp_path / "gw.db", _hour_after(clock, -1))
            assert gateway.stop() == 0, gateway.log_tail()
    done = subprocess.run([str(GATEWAY), "readings", "--config", str(config), "--meter", "ree-1",
                           "--last", "1000", "--json"], capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert any("billing_date" in row["values"] for row in rows), rows[:2]
