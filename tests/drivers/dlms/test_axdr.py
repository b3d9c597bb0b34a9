"""A-XDR Data: every type encodes and decodes (hypothesis round trip), floats become the
shortest exact Decimal, lengths and nesting are bounded before anything is allocated."""

from __future__ import annotations

import struct
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from drivers.dlms.axdr import (
    FLOATS,
    INTEGERS,
    MAX_DEPTH,
    BitString,
    CompactArray,
    Data,
    Tag,
    TypeDescription,
    decode_data,
    encode_data,
    float_bits_to_decimal,
)
from drivers.dlms.timefields import CosemDate, CosemDateTime, CosemTime, decode_date_time
from drivers.errors import FrameError


def _opt(strategy: st.SearchStrategy[int]) -> st.SearchStrategy[int | None]:
    return st.one_of(st.none(), strategy)


DATES = st.builds(CosemDate, _opt(st.integers(0, 0xFFFE)),
                  _opt(st.one_of(st.integers(1, 12), st.sampled_from([0xFD, 0xFE]))),
                  _opt(st.one_of(st.integers(1, 31), st.sampled_from([0xFD, 0xFE]))),
                  _opt(st.integers(1, 7)))
TIMES = st.builds(CosemTime, _opt(st.integers(0, 23)), _opt(st.integers(0, 59)),
                  _opt(st.integers(0, 59)), _opt(st.integers(0, 99)))
DATE_TIMES = st.builds(CosemDateTime, DATES, TIMES, _opt(st.integers(-720, 720)),
                       _opt(st.integers(0, 0xFE)))


def _integer(tag: Tag) -> st.SearchStrategy[Data]:
    size, signed = INTEGERS[tag]
    low, high = (-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1) if signed else (
        0, (1 << (8 * size)) - 1)
    return st.builds(Data, st.just(tag), st.integers(low, high))


def _float(tag: Tag) -> st.SearchStrategy[Data]:
    numbers = (st.floats(allow_nan=False, allow_infinity=False, width=32)
               if tag is Tag.FLOAT32 else st.floats(allow_nan=False, allow_infinity=False))
    return numbers.map(lambda f: Data(tag, float_bits_to_decimal(tag, FLOATS[tag].pack(f))))


SIMPLE = st.one_of(
    st.just(Data(Tag.NULL)), st.just(Data(Tag.DONT_CARE)),
    st.builds(Data, st.just(Tag.BOOLEAN), st.booleans()),
    *(_integer(tag) for tag in INTEGERS), _float(Tag.FLOAT32), _float(Tag.FLOAT64),
    st.builds(Data, st.just(Tag.OCTET_STRING), st.binary(max_size=300)),
    st.builds(Data, st.just(Tag.VISIBLE_STRING),
              st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=40)),
    st.builds(Data, st.just(Tag.UTF8_STRING), st.text(max_size=40)),
    st.builds(Data, st.just(Tag.BIT_STRING), st.builds(BitString, st.text("01", max_size=40))),
    st.builds(Data, st.just(Tag.DATE_TIME), DATE_TIMES),
    st.builds(Data, st.just(Tag.DATE), DATES), st.builds(Data, st.just(Tag.TIME), TIMES))
DATA = st.recursive(SIMPLE, lambda inner: st.one_of(
    st.builds(Data, st.just(Tag.ARRAY), st.lists(inner, max_size=5).map(tuple)),
    st.builds(Data, st.just(Tag.STRUCTURE), st.lists(inner, max_size=5).map(tuple))),
    max_leaves=30)


@given(DATA)
@example(Data(Tag.FLOAT32, Decimal("-0")))
@example(Data(Tag.OCTET_STRING, b"\x00" * 200))  # a long-form length (0x81 0xC8)
def test_data_round_trips(data: Data) -> None:
    assert decode_data(encode_data(data)) == data


@pytest.mark.parametrize(("raw", "text"), [
    ("43663A5A", "230.22794"), ("4366199A", "230.1"), ("3F800000", "1"),
    ("00000001", "1E-45"), ("7F7FFFFF", "3.4028235E+38"), ("80000000", "-0")])
def test_float32_is_the_shortest_decimal_that_round_trips(raw: str, text: str) -> None:
    value = float_bits_to_decimal(Tag.FLOAT32, bytes.fromhex(raw))
    assert value == Decimal(text) and str(value) == text
    assert struct.pack(">f", float(value)).hex().upper() == raw


def test_float64_and_non_finite() -> None:
    pi = decode_data(bytes.fromhex("18400921FB54442D18"))
    assert pi.value == Decimal("3.141592653589793")
    assert decode_data(bytes.fromhex("177F800000")).value == Decimal("Infinity")
    nan = decode_data(bytes.fromhex("177FC00000")).value
    assert isinstance(nan, Decimal) and nan.is_nan()


def test_kaifa_list_decodes_exactly() -> None:
    raw = bytes.fromhex("0203090745464D5F3030310600000524120960")
    data = decode_data(raw)
    assert isinstance(data.value, tuple)
    assert [d.tag for d in data.value] == [Tag.OCTET_STRING, Tag.DOUBLE_LONG_UNSIGNED,
                                           Tag.LONG_UNSIGNED]
    assert data.value[1].value == 1316


def test_date_time_fields() -> None:
    stamp = decode_date_time(bytes.fromhex("07E1090C0217122AFF800000"))
    assert stamp.deviation is None and stamp.clock_status == 0
    assert stamp.text() == "2017-09-12T23:18:42"
    cet = decode_date_time(bytes.fromhex("07E30C130402000000FFC400"))
    assert cet.deviation == -60 and cet.text() == "2019-12-19T02:00:00+01:00"
    assert str(cet.utc()) == "2019-12-19 01:00:00+00:00"
    every_day = decode_date_time(bytes.fromhex("FFFFFFFFFF000000FF800000"))
    assert every_day.local() is None and every_day.text() == "****-**-**T00:00:00"
    with pytest.raises(FrameError, match="out of range"):
        decode_date_time(bytes.fromhex("07E10D0C0217122AFF800000"))


def test_compact_array_round_trips() -> None:
    description = TypeDescription(Tag.STRUCTURE, 2, (TypeDescription(Tag.LONG_UNSIGNED),
                                                     TypeDescription(Tag.DOUBLE_LONG)))
    rows = tuple(Data(Tag.STRUCTURE, (Data(Tag.LONG_UNSIGNED, i), Data(Tag.DOUBLE_LONG, -i)))
                 for i in range(4))
    data = Data(Tag.COMPACT_ARRAY, CompactArray(description, rows))
    raw = encode_data(data)
    assert raw[:6] == bytes([19, 2, 2, 18, 5, 24])
    assert decode_data(raw) == data


def test_compact_array_of_empty_elements_is_refused() -> None:
    with pytest.raises(FrameError, match="no bytes"):
        decode_data(bytes([19, 0, 1, 0]) + b"\x00")  # null elements in one byte of content


@pytest.mark.timeout(5)
def test_lengths_are_checked_before_allocating() -> None:
    with pytest.raises(FrameError, match="elements"):
        decode_data(bytes.fromhex("0184FFFFFFFF00"))  # an array of 2^32 - 1 in 1 byte
    with pytest.raises(FrameError, match="claimed"):
        decode_data(bytes.fromhex("0984FFFFFFFF00"))
    with pytest.raises(FrameError, match="octets"):
        decode_data(bytes.fromhex("0985FFFFFFFFFF00"))


def test_nesting_is_bounded() -> None:
    deep = bytes([Tag.ARRAY, 1]) * (MAX_DEPTH + 1) + b"\x00"
    with pytest.raises(FrameError, match="deeper"):
        decode_data(deep)
    ok = bytes([Tag.ARRAY, 1]) * MAX_DEPTH + b"\x00"
    assert decode_data(ok).tag is Tag.ARRAY


@pytest.mark.parametrize("raw", ["", "07", "0C03FFFE41", "0203", "0600", "FF00", "1900"])
def test_malformed_data_is_a_frame_error(raw: str) -> None:
    with pytest.raises(FrameError):
        decode_data(bytes.fromhex(raw))
