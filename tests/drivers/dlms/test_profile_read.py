"""Load profile by range against the simulated meter: the first read takes the last day, a read
after an outage asks for the missing interval only, the cursor survives a restart."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from core.clock import FakeClock
from drivers.dlms.client import Association, Authentication, Credentials
from drivers.dlms.hdlc import Address
from drivers.dlms.links import HdlcLink
from drivers.dlms.profile_read import ProfileCursor, ProfileCursorError, read_missing
from drivers.dlms.server import CosemServer
from drivers.dlms.sim import HdlcServerLink, LoopbackStream
from drivers.dlms.sim_objects import CAPTURE_PERIOD_S, SimObjects

PROFILE = "1-0:99.1.0.255"
METER = Address(1, 17, 2)


async def _association(objects: SimObjects) -> Association:
    link = HdlcLink(LoopbackStream(HdlcServerLink(CosemServer(objects), METER)), Address(16),
                    METER)
    await link.open()
    association = Association(link, Credentials(Authentication.NONE))
    await association.associate()
    return association


async def test_after_an_outage_only_the_missing_interval_is_read(tmp_path: Path) -> None:
    clock = FakeClock()
    objects = SimObjects(clock.wall_ms)
    clock.step(30 * 24 * 3600)  # a month of rows in the meter (2880 kept)
    cursor = ProfileCursor(tmp_path / "dlms-profile.json")
    association = await _association(objects)
    now = objects.now().replace(tzinfo=None)
    first = await read_missing(association, cursor, "m1", PROFILE, now)
    assert len(first.rows) == 24 * 4 + 1  # the last day, both ends included
    cursor.advance("m1", PROFILE, first.rows)
    last_kept = first.rows[-1]
    clock.step(2 * 3600 + 60)  # the gateway was away two hours
    restarted = ProfileCursor(tmp_path / "dlms-profile.json")
    now = objects.now().replace(tzinfo=None)
    again = await read_missing(await _association(objects), restarted, "m1", PROFILE, now)
    assert again.asked_from == last_kept.when + timedelta(seconds=1)  # type: ignore[operator]
    assert len(again.rows) == 8  # eight quarters, nothing read twice, nothing missed
    expected = objects.profile_rows()[-8:]
    assert [r.when for r in again.rows] == [when.replace(tzinfo=None) for when, _ in expected]
    energy = again.rows[-1].values[0]
    assert energy.obis == "1-0:1.8.0.255" and energy.unit == "Wh" and energy.scaler == 0
    assert energy.value == Decimal(expected[-1][1])
    assert (again.rows[0].when - last_kept.when).total_seconds() == CAPTURE_PERIOD_S  # type: ignore[operator]


async def test_rows_not_kept_are_asked_again(tmp_path: Path) -> None:
    clock = FakeClock()
    objects = SimObjects(clock.wall_ms)
    cursor = ProfileCursor(tmp_path / "c.json")
    association = await _association(objects)
    now = objects.now().replace(tzinfo=None)
    one = await read_missing(association, cursor, "m1", PROFILE, now)
    two = await read_missing(association, cursor, "m1", PROFILE, now)  # no advance between
    assert [r.when for r in one.rows] == [r.when for r in two.rows] and one.rows
    cursor.advance("m1", PROFILE, one.rows)
    cursor.advance("m1", PROFILE, one.rows[:1])  # never backwards
    assert cursor.last("m1", PROFILE) == one.rows[-1].when


def test_a_damaged_cursor_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"format": 1, "last": {"m/x": "yesterday"}}')
    with pytest.raises(ProfileCursorError):
        ProfileCursor(path)
