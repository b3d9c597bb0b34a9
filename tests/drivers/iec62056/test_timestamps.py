"""DSMR timestamps keep their summer/winter flag and convert to UTC exactly, also in the hour
that repeats when summer time ends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from drivers.iec62056.p1 import P1Port
from drivers.iec62056.timestamps import MeterTimestamp, parse_timestamp
from tests.corpus import CORPUS

TELEGRAMS = json.loads((CORPUS / "iec62056/dsmr_telegrams.json").read_text())
CET = 60


def test_the_repeated_autumn_hour_is_told_apart_by_the_flag() -> None:
    summer = parse_timestamp("201025023000S")
    winter = parse_timestamp("201025023000W")
    assert summer == MeterTimestamp(datetime(2020, 10, 25, 2, 30), True)
    assert winter == MeterTimestamp(datetime(2020, 10, 25, 2, 30), False)
    assert summer.to_utc(CET) == datetime(2020, 10, 25, 0, 30, tzinfo=UTC)
    assert winter.to_utc(CET) == datetime(2020, 10, 25, 1, 30, tzinfo=UTC)
    assert summer.isoformat(CET) == "2020-10-25T02:30:00+02:00"
    assert winter.isoformat(CET) == "2020-10-25T02:30:00+01:00"


def test_a_timestamp_without_flag_has_no_utc_instant() -> None:
    stamp = parse_timestamp("121106150000")  # DSMR 2.2 / 3: no S/W
    assert stamp == MeterTimestamp(datetime(2012, 11, 6, 15, 0), None)
    assert stamp.to_utc(CET) is None
    assert stamp.isoformat(CET) == "2012-11-06T15:00:00"


def test_iec_timestamps_still_parse_and_nonsense_does_not() -> None:
    assert parse_timestamp("17-08-04 13:24").local == datetime(2017, 8, 4, 13, 24)
    for text in ("201325023000W", "2010250230S", "201025023000X", "201025023000SW", ""):
        assert parse_timestamp(text) is None, text


def test_p1_meter_time_keeps_its_flag_and_utc_instant() -> None:
    two_mbus = next(e for e in TELEGRAMS if "TWO_MBUS" in e["source"])  # 200426223325S
    telegram = P1Port(None, "p1-test")._decode(two_mbus["telegram"].encode("latin-1"))
    assert telegram is not None
    mapped = telegram.mapped
    assert mapped.meter_time == datetime(2020, 4, 26, 22, 33, 25)  # local, for the drift check
    assert mapped.meter_time_dst is True
    assert mapped.meter_time_utc == datetime(2020, 4, 26, 20, 33, 25, tzinfo=UTC)
    values = {s.quantity: s.value for s in mapped.samples}
    assert values["meter_datetime"] == "2020-04-26T22:33:25+02:00"


def test_p1_meter_time_offset_is_configurable() -> None:
    iskra_ie = next(e for e in TELEGRAMS if "MIE5T" in e["version"])  # Ireland: GMT / IST
    telegram = P1Port(None, "p1-test", utc_offset_min=0)._decode(
        iskra_ie["telegram"].encode("latin-1"))
    assert telegram is not None
    assert telegram.mapped.meter_time_utc == datetime(2023, 2, 2, 12, 27, 47, tzinfo=UTC)


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2068, 12, 30)),
       st.booleans(), st.sampled_from([0, 60, 120, -300]))
@example(datetime(2020, 10, 25, 0, 30), True, 60)  # the repeated hour, first pass
@example(datetime(2020, 10, 25, 1, 30), False, 60)  # the repeated hour, second pass
def test_dsmr_text_round_trips_to_the_same_instant(utc: datetime, dst: bool,
                                                   offset_min: int) -> None:
    instant = utc.replace(microsecond=0, tzinfo=UTC)
    local = instant + timedelta(minutes=offset_min + (60 if dst else 0))
    text = local.strftime("%y%m%d%H%M%S") + ("S" if dst else "W")
    stamp = parse_timestamp(text)
    assert stamp is not None and stamp.dst is dst
    assert stamp.to_utc(offset_min) == instant
    assert datetime.fromisoformat(stamp.isoformat(offset_min)) == instant
