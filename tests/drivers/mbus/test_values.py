"""Bounded values and invalid dates: extreme VIF exponents, huge BCD / integers, dates such as
all FF or month 15 never raise out of the decoder and never become a made-up number or date."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.numbers import within
from drivers.mbus import vif as V
from drivers.mbus.mapping import records_to_samples, telegram_readings
from drivers.mbus.records import RecordDecoder, decode_records

HEAT, WATER = 0x04, 0x07
INT_SIZES = {0x1: 1, 0x2: 2, 0x3: 3, 0x4: 4, 0x6: 6, 0x7: 8}
BCD_SIZES = {0x9: 1, 0xA: 2, 0xB: 3, 0xC: 4, 0xE: 6}
NUMERIC = [code for code in range(0x7B) if V.PRIMARY[code].interpret == V.NUMBER]
SHIFTS = sorted(V.VIFE_EXPONENT_SHIFT)
# 1 (one byte int) J x 10^7 with nine VIFE x10^3 and one more: 10^37 J, beyond 34 digits
HUGE_JOULES = bytes([0x01, 0x8F] + [0xFD] * 9 + [0x7D, 0x01])


def out_of_range_or_exact(record, raw: int, exponent: int) -> None:
    """The record holds raw x 10^exponent exactly, or no value with the bytes and a reason."""
    if record.value is None:
        assert record.raw is not None and "out of range" in record.error
        return
    assert isinstance(record.value, Decimal) and record.error == ""
    assert within(record.value) == record.value
    assert record.value == Decimal(f"{raw}E{exponent}")   # exact: no context rounds it


def test_huge_exponent_is_a_null_record_and_no_sample() -> None:
    # raised decimal.InvalidOperation in mapping.py (J -> kWh of 10^37 J) before
    (record,) = decode_records(HUGE_JOULES)
    assert record.kind == "energy" and record.value is None and record.raw == b"\x01"
    assert "out of range" in record.error
    assert records_to_samples([record], HEAT) == []
    samples, errors = telegram_readings([record], HEAT, object())
    assert samples == [] and len(errors) == 1


def test_conversion_out_of_range_is_a_frame_error_and_the_rest_stays() -> None:
    # 34-digit m3/s (LVAR integer) x 3600 -> m3/h needs 38 digits: was rounded silently
    number = 10 ** 33 + 7
    lvar = bytes([0x0D, 0x4F, 0xEF]) + number.to_bytes(15, "little", signed=True)
    volume = bytes.fromhex("0C1327854402")
    records = RecordDecoder().decode(lvar + volume)
    assert records[0].value == Decimal(f"{number}E-2")   # VIF 0x4F: m3/s x 10^-2
    samples, errors = telegram_readings(records, WATER, object())
    assert [s.quantity for s in samples] == ["volume"]
    assert len(errors) == 1 and "out of range" in str(errors[0])
    assert [s.quantity for s in records_to_samples(records, WATER)] == ["volume"]


@st.composite
def extreme_record(draw: st.DrawFn) -> tuple[bytes, int, int]:
    """(record bytes, raw number, exponent): primary or 0xFB VIF, up to 10 exponent VIFEs."""
    bcd = draw(st.booleans())
    field = draw(st.sampled_from(sorted(BCD_SIZES if bcd else INT_SIZES)))
    size = (BCD_SIZES if bcd else INT_SIZES)[field]
    if bcd:
        top = 10 ** (2 * size) - 1
        raw = draw(st.sampled_from([0, 1, top]) | st.integers(0, top))
        data = bytes.fromhex(f"{raw:0{2 * size}d}")[::-1]
    else:
        low, high = -(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1
        raw = draw(st.sampled_from([low, high, 1, -1]) | st.integers(low, high))
        data = raw.to_bytes(size, "little", signed=True)
    extended = draw(st.booleans())
    table = V.EXT_FB if extended else V.PRIMARY
    codes = [c for c in range(128) if table[c].interpret == V.NUMBER and table[c].kind != "unknown"]
    code = draw(st.sampled_from(codes if extended else NUMERIC))
    shifts = draw(st.lists(st.sampled_from(SHIFTS), max_size=10 - extended))
    exponent = table[code].exponent + sum(V.VIFE_EXPONENT_SHIFT[s] for s in shifts)
    vifes = ([code] if extended else []) + shifts
    head = [0xFB] if extended else [code]
    chain = head + vifes
    header = [chain[i] | (0x80 if i < len(chain) - 1 else 0) for i in range(len(chain))]
    return bytes([field, *header]) + data, raw, exponent


@settings(max_examples=500, deadline=None)
@given(st.lists(extreme_record(), min_size=1, max_size=6), st.sampled_from([HEAT, WATER, 0x02]))
@example([(HUGE_JOULES, 1, 37)], HEAT)
@example([(bytes([0x01, 0x93] + [0xF0] * 9 + [0x70, 0x05]), 5, -66)], WATER)  # 5E-66: subnormal
@example([(bytes([0x07, 0x87, 0x7D]) + (2**63 - 1).to_bytes(8, "little"), 2**63 - 1, 7)], HEAT)
def test_extreme_values_stay_bounded_and_never_raise(records: list, device_type: int) -> None:
    payload = b"".join(record for record, _raw, _exponent in records)
    decoded = RecordDecoder().decode(payload)
    assert len(decoded) == len(records)
    for record, (_bytes, raw, exponent) in zip(decoded, records, strict=True):
        out_of_range_or_exact(record, raw, exponent)
    samples, errors = telegram_readings(decoded, device_type, object())
    nulls = sum(r.value is None for r in decoded)
    assert len(errors) >= nulls
    for sample in [*samples, *records_to_samples(decoded, device_type)]:
        assert isinstance(sample.value, Decimal) and within(sample.value) == sample.value


# ---- dates and times -----------------------------------------------------------------

@pytest.mark.parametrize(("record", "meaning"), [
    ("426CFFFF", "all FF (type G): was 2127-15-31"),
    ("426C0000", "all zero: was 2000-00-00"),
    ("426C3F1F", "day 31, month 15"),
    ("426CE01C", "day 0"),
    ("426C5E12", "30 February 2018"),
    ("426CE1F7", "1 July 2127: year 127 is beyond 0..99"),
    ("046DFFFFFFFF", "all FF (type F): was 2127-15-31T31:63"),
    ("046D00000000", "all zero (type F)"),
    ("046DB2371F15", "IV bit set: the meter says its time is invalid"),
    ("046D3A1CBF14", "hour 28"),
    ("046D3C171F15", "minute 60"),
    ("066DFFFFFFFFFFFF", "all FF (type I)"),
    ("066D3C32371F1500", "second 60 (type I)"),
    ("036DFFFFFF", "all FF (type J)"),
    ("036D003C17", "minute 60 (type J)"),
    ("016D17", "one byte: no date coding"),
    ("0D6D051F151F1515", "a date in a 5-byte LVAR: no date coding (was text)"),
    ("04FD70FFFFFFFF", "battery change date-time, all FF"),
])
def test_invalid_dates_are_null_with_the_bytes_kept(record: str, meaning: str) -> None:
    payload = bytes.fromhex(record)
    (decoded,) = decode_records(payload)
    assert decoded.value is None, meaning
    header = 3 if payload[1] == 0xFD else 2
    if payload[0] & 0x0F == 0x0D:
        header += 1
    assert decoded.raw == payload[header:], meaning
    assert decoded.error == ""   # not an error of the telegram: the meter has no date to give
    assert records_to_samples([decoded], WATER) == []


@pytest.mark.parametrize(("record", "value", "kind"), [
    ("426CDF1C", "2014-12-31", "date"),
    ("046D32371F15", "2008-05-31T23:50", "datetime"),
    ("066D1E32371F1500", "2008-05-31T23:50:30", "datetime"),
    ("036D1E3217", "23:50:30", "time"),
    ("026D1F15", "2008-05-31", "date"),
    ("426C3C22", "2017-02-28", "date"),
])
def test_valid_dates_and_times_decode(record: str, value: str, kind: str) -> None:
    (decoded,) = decode_records(bytes.fromhex(record))
    assert (decoded.kind, decoded.value, decoded.raw) == (kind, value, None)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([(0x2, 0x6C), (0x2, 0x6D), (0x3, 0x6D), (0x4, 0x6D), (0x6, 0x6D),
                        (0x4, 0x6C)]), st.binary(min_size=6, max_size=6))
@example((0x2, 0x6C), b"\xff\xff" + bytes(4))
@example((0x4, 0x6D), b"\x3a\x1c\xbf\x14" + bytes(2))
def test_any_date_bytes_give_a_real_date_or_null(header: tuple[int, int], data: bytes) -> None:
    size = {0x2: 2, 0x3: 3, 0x4: 4, 0x6: 6}[header[0]]
    (decoded,) = decode_records(bytes(header) + data[:size])
    if decoded.value is None:
        assert decoded.raw == data[:size]
        return
    assert isinstance(decoded.value, str)
    if size == 3:
        time.fromisoformat(decoded.value)
    elif size == 2:
        assert 2000 <= date.fromisoformat(decoded.value).year <= 2099
    else:
        assert 2000 <= datetime.fromisoformat(decoded.value).year <= 2099
