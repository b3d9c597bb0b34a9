"""ASDUs of the REE profile: golden objects, time tags, and hypothesis round trips.

The golden octets marked "gisce" are the example objects of the public gisce/iec870ree tests
(tests/test_app_asdu.py), some from the REE protocol document's own examples ("según el pdf");
the whole frames around them are built here from the profile's layout.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from drivers import ft12
from drivers.errors import FrameError
from drivers.iec102.asdu import Asdu, Cause
from drivers.iec102.bodies import asdu_of, body_of
from drivers.iec102.objects import (
    Billing,
    BillingRecords,
    Block,
    Blocks,
    Energy,
    Event,
    Events,
    Password,
    Total,
    Totals,
    TotalsRange,
    quality_flags,
)
from drivers.iec102.timetags import TimeA, TimeB, tag_time

MADRID = ZoneInfo("Europe/Madrid")
# gisce: M_IT_TK_2 with 8 totals (7 and 8 invalid, quality 0x80) and time A 2018-07-01 01:00
TOTALS_OBJECTS = bytes.fromhex(
    "010400000000020000000000031b00000000040000000000050000000000060000000000"
    "070000000080080000000080" "0081e10712")
# gisce: one M_TA_VX_2 billing record, object address 20
BILLING_OBJECT = bytes.fromhex(
    "1474373b00c06e000000fb591c00ba5c000000e4bd0500db0600000000000000800000000080"
    "650100000f87f207120000000000800080e107120080610812")
# gisce: C_CI_NU_2 request objects, addresses 1..8, 2018-07-01 01:00 .. 2018-08-01 00:00
RANGE_OBJECTS = bytes.fromhex("0108" "0001e10712" "0000610812")


def test_time_a_examples_of_the_ree_document() -> None:
    assert TimeA.from_bytes(bytes.fromhex("0100120909")).wall() == dt.datetime(2009, 9, 18, 0, 1)
    assert TimeA.from_bytes(bytes.fromhex("000b07020a")).wall() == dt.datetime(2010, 2, 7, 11)


def test_time_b_examples() -> None:
    summer = TimeB.from_bytes(bytes.fromhex("0090258b7c0813"))        # gisce
    assert summer.wall() == dt.datetime(2019, 8, 28, 11, 37, 36)
    assert summer.rest.summer
    assert tag_time(summer, MADRID).utcoffset() == dt.timedelta(hours=2)
    winter = TimeB.from_bytes(bytes.fromhex("0a2a100be7020a"))        # gisce
    assert winter.wall() == dt.datetime(2010, 2, 7, 11, 16, 10, 522000)
    assert tag_time(winter, MADRID).utcoffset() == dt.timedelta(hours=1)


def test_summer_bit_picks_the_side_of_the_repeated_autumn_hour() -> None:
    wall = dt.datetime(2026, 10, 25, 2, 30)
    assert tag_time(TimeA.of(wall, summer=True), MADRID).utcoffset() == dt.timedelta(hours=2)
    assert tag_time(TimeA.of(wall, summer=False), MADRID).utcoffset() == dt.timedelta(hours=1)


def test_password_object() -> None:    # gisce: key 7 -> 07 00 00 00
    asdu = asdu_of(183, Cause.ACTIVATION, 1, 0, Password(7))
    assert asdu.to_bytes() == bytes.fromhex("b70106010000" "07000000")
    assert body_of(Asdu.from_bytes(asdu.to_bytes())) == Password(7)


def test_totals_golden() -> None:
    body = body_of(Asdu(11, Cause.REQUEST, 1, 11, TOTALS_OBJECTS, 8))
    assert isinstance(body, Totals)
    assert body.totals[0] == Total(1, 4, 0) and body.totals[2] == Total(3, 27, 0)
    assert body.totals[7] == Total(8, 0, 0x80) and quality_flags(0x80) == ["IV"]
    assert body.time.wall() == dt.datetime(2018, 7, 1, 1)
    assert body.build() == (8, TOTALS_OBJECTS)


def test_range_request_golden() -> None:
    body = body_of(Asdu(123, Cause.ACTIVATION, 1, 11, RANGE_OBJECTS, 1))
    assert body == TotalsRange(1, 8, TimeA.of(dt.datetime(2018, 7, 1, 1)),
                               TimeA.of(dt.datetime(2018, 8, 1, 0)))
    assert body.build() == (1, RANGE_OBJECTS)


def test_billing_golden() -> None:
    body = body_of(Asdu(136, Cause.REQUEST, 1, 134, BILLING_OBJECT, 1))
    assert isinstance(body, BillingRecords)
    record = body.records[0]
    assert record.address == 20
    assert record.active == Energy(3880820, 28352, 0)
    assert record.reactive_inductive == Energy(1858043, 23738, 0)
    assert record.reactive_capacitive == Energy(376292, 1755, 0)
    assert record.max_demand == 357
    assert record.max_demand_time.wall() == dt.datetime(2018, 7, 18, 7, 15)
    assert record.excess_quality == 0x80
    assert record.period_start.wall() == dt.datetime(2018, 7, 1)
    assert record.period_end.wall() == dt.datetime(2018, 8, 1)
    assert record.to_bytes() == BILLING_OBJECT


def test_whole_frame_of_an_answer() -> None:
    asdu = Asdu(11, Cause.REQUEST, 1, 11, TOTALS_OBJECTS, 8).to_bytes()
    frame = ft12.build_frame(ft12.LongFrame(0x08, 1, asdu[0], asdu[1:]), 2)
    assert frame[:4] == bytes([0x68, 9 + len(TOTALS_OBJECTS), 9 + len(TOTALS_OBJECTS), 0x68])
    parsed = ft12.parse_frame(frame, 2)
    assert isinstance(parsed, ft12.LongFrame)
    assert Asdu.from_bytes(bytes([parsed.ci]) + parsed.data).count == 8


@pytest.mark.parametrize("type_id,objects", [
    (8, TOTALS_OBJECTS[:-1]), (135, BILLING_OBJECT + b"\x00"), (183, b"\x07"), (72, b"\x00"),
    (140, b"\x09\x00"), (1, b"\x03\x01"), (123, RANGE_OBJECTS[:-2])])
def test_objects_that_do_not_fit_are_frame_errors(type_id: int, objects: bytes) -> None:
    count = 8 if type_id == 8 else 1
    with pytest.raises(FrameError):
        body_of(Asdu(type_id, Cause.REQUEST, 1, 0, objects, count))


def test_short_asdu_is_a_frame_error() -> None:
    with pytest.raises(FrameError):
        Asdu.from_bytes(b"\x08\x01\x05\x01\x00")


times_a = st.builds(TimeA, st.integers(0, 63), st.integers(0, 31), st.integers(0, 31),
                    st.integers(0, 15), st.integers(0, 127), st.integers(0, 7), st.booleans(),
                    st.booleans(), st.booleans(), st.integers(0, 3), st.integers(0, 3),
                    st.integers(0, 3), st.booleans())
times_b = st.builds(TimeB, st.integers(0, 1023), st.integers(0, 63), times_a)
u32 = st.integers(0, 0xFFFFFFFF)
octet = st.integers(0, 255)
totals = st.builds(Totals, st.lists(st.builds(Total, octet, u32, octet), max_size=30)
                   .map(tuple), times_a)
energies = st.builds(Energy, u32, u32, octet)
billings = st.builds(Billing, octet, energies, energies, energies, st.tuples(u32, octet),
                     st.tuples(u32, octet), u32, times_a, octet, u32, octet, times_a, times_a)
events = st.builds(Events, st.lists(st.builds(Event, octet, st.integers(0, 127),
                                              st.booleans(), times_b), max_size=20).map(tuple))
blocks = st.builds(Blocks, st.lists(st.sampled_from([9, 10, 11]).flatmap(
    lambda a: st.builds(Block, st.just(a), st.lists(st.tuples(u32, octet), min_size=
                        {9: 8, 10: 6, 11: 3}[a], max_size={9: 8, 10: 6, 11: 3}[a]).map(tuple),
                        times_a)), max_size=5).map(tuple))


@given(times_a)
@example(TimeA(0, 0, 0, 0, 0))
def test_time_a_round_trip(tag: TimeA) -> None:
    assert TimeA.from_bytes(tag.to_bytes()) == tag


@given(times_b)
def test_time_b_round_trip(tag: TimeB) -> None:
    assert TimeB.from_bytes(tag.to_bytes()) == tag


@given(st.builds(Asdu, octet, st.integers(0, 63), st.integers(0, 0xFFFF), octet,
                 st.binary(max_size=240), st.integers(0, 127), st.booleans(), st.booleans(),
                 st.booleans()))
def test_asdu_round_trip(asdu: Asdu) -> None:
    assert Asdu.from_bytes(asdu.to_bytes()) == asdu


@given(st.one_of(
    st.tuples(st.sampled_from([8, 11]), totals),
    st.tuples(st.sampled_from([135, 136]),
              st.lists(billings, max_size=3).map(tuple).map(BillingRecords)),
    st.tuples(st.just(1), events), st.tuples(st.just(140), blocks),
    st.tuples(st.sampled_from([122, 123]), st.builds(TotalsRange, octet, octet, times_a,
                                                      times_a)),
    st.tuples(st.just(183), st.builds(Password, u32))))
def test_body_round_trip(case: tuple[int, object]) -> None:
    type_id, body = case
    asdu = asdu_of(type_id, Cause.REQUEST, 1, 11, body)   # type: ignore[arg-type]
    assert body_of(Asdu.from_bytes(asdu.to_bytes())) == body
