"""Exact decoding: float32 shortest round trip, integer scales, word orders, real captures."""

import math
import struct
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.numbers import within
from drivers.errors import DriverError, FrameError
from drivers.modbus.decode import (
    apply_ratio,
    decode_register,
    decode_span,
    encode_register,
    encode_span,
    float32_bits_to_decimal,
)
from drivers.modbus.profiles import TYPE_WORDS, Register, Span, get_profile

SIGNED = {"int16", "int32", "int64"}
scales = st.sampled_from([Decimal("1"), Decimal("0.1"), Decimal("0.01"), Decimal("0.001"),
                          Decimal("1000"), Decimal("0.5")])


def register_of(profile: str, quantity: str) -> Register:
    return next(r for r in get_profile(profile).registers if r.quantity == quantity)


def test_circutor_manual_capture_212_5_volts() -> None:
    # CVM-C10 manual 4.10.2.1: response 0A 04 04 0000084D 8621 is VL1 x10 = 212.5 V
    frame = bytes.fromhex("0A0404" "0000084D" "8621")
    words = [int.from_bytes(frame[3 + i:5 + i], "big") for i in (0, 2)]
    assert decode_register(register_of("circutor_cvm_c10", "voltage_l1"), [words]) \
        == Decimal("212.5")


def test_float32_230_1_is_exactly_230_1() -> None:
    bits = int.from_bytes(struct.pack(">f", 230.1), "big")  # 0x436619 9A on the wire
    span = Span(4, 0, "float32", "big", Decimal(1))
    assert str(decode_span(span, [bits >> 16, bits & 0xFFFF])) == "230.1"


def test_em340_little_word_order_and_nan_skipped() -> None:
    volts = register_of("gavazzi_em340", "voltage_l1")
    assert decode_register(volts, [[2301, 0]]) == Decimal("230.1")  # low word first
    sdm = register_of("eastron_sdm630", "voltage_l2")
    assert decode_register(sdm, [[0x7FC0, 0]]) is None  # NaN: absent phase
    assert decode_register(sdm, [[0x7F80, 0]]) is None  # +inf


def test_circutor_energy_is_kwh_plus_wh() -> None:
    energy = register_of("circutor_cvm_c10", "import_active_energy")
    assert decode_register(energy, [[0, 1234], [0, 567]]) == Decimal("1234.567")
    assert encode_register(energy, Decimal("1234.567")) == [[0, 1234], [0, 567]]


FLT_MAX_BITS = (0x7F7FFFFF, 0xFF7FFFFF)


@pytest.mark.parametrize("bits", [*FLT_MAX_BITS, 0x7FC00000, 0x7F800000, 0xFF800000])
@pytest.mark.parametrize("order", ["big", "little"])
def test_float32_not_available_fillers_decode_to_none(bits: int, order: str) -> None:
    # FLT_MAX used to raise OverflowError here, which ended the bus's poll task
    span = Span(4, 0, "float32", order, Decimal(1))
    words = [bits >> 16, bits & 0xFFFF]
    assert decode_span(span, words if order == "big" else words[::-1]) is None


def in_bounded_range(as_float: float) -> bool | None:
    """Plain form within 34 digits, adjusted exponent >= -40 (core.numbers.BOUNDED); None
    within 1 % of a bound, where the shortest decimal may round either way."""
    size = abs(as_float)
    if 0.99e-40 <= size <= 1.01e-40 or 0.99e34 <= size <= 1.01e34:
        return None
    return size == 0 or 1e-40 <= size < 1e34


@settings(max_examples=300)
@given(st.integers(0, 0xFFFFFFFF))
@example(0x7F7FFFFF)  # FLT_MAX: OverflowError before
@example(0x7F7FFFFE)  # a short candidate ("3.403e+38") overflows float32 packing
@example(0x00000001)  # smallest subnormal, 1E-45: below the bounded range
@example(0x80000000)  # -0.0: BOUNDED.plus() alone gave 0, which re-encodes to other bits
def test_float32_shortest_round_trip(bits: int) -> None:
    (as_float,) = struct.unpack(">f", bits.to_bytes(4, "big"))
    if not math.isfinite(as_float) or abs(as_float) == 3.4028234663852886e38:
        assert float32_bits_to_decimal(bits) is None
        return
    if in_bounded_range(as_float) is False:
        with pytest.raises(FrameError, match="out of range"):
            float32_bits_to_decimal(bits)
        return
    try:
        value = float32_bits_to_decimal(bits)
    except FrameError:
        assert in_bounded_range(as_float) is None  # at a bound: out of range is right too
        return
    assert value is not None and within(value) == value
    assert value.as_tuple().exponent <= 0  # plain form: 230, never 2.3E+2
    assert struct.pack(">f", float(value)) == bits.to_bytes(4, "big")
    digits = len(value.normalize().as_tuple().digits)
    if digits > 1:  # one digit fewer never round-trips
        shorter = format(as_float, f".{digits - 1}g")
        assert struct.pack(">f", float(shorter)) != bits.to_bytes(4, "big")


@settings(max_examples=300)
@given(st.sampled_from(sorted(TYPE_WORDS)), st.sampled_from(["big", "little"]), scales,
       st.data())
def test_encode_decode_round_trip(dtype: str, order: str, scale: Decimal, data) -> None:
    span = Span(3, 0, dtype, order, scale)
    if dtype == "float32":
        bits = data.draw(st.integers(0, 0xFFFFFFFF))
        (as_float,) = struct.unpack(">f", bits.to_bytes(4, "big"))
        if not math.isfinite(as_float) or not in_bounded_range(as_float) \
                or not in_bounded_range(as_float * float(scale)):
            return  # not available / out of range: the tests above
        raw = float32_bits_to_decimal(bits)
        if raw is None:
            return
        value = raw * scale
    else:
        n = 16 * TYPE_WORDS[dtype]
        low, high = (-(1 << (n - 1)), (1 << (n - 1)) - 1) if dtype in SIGNED else (0, (1 << n) - 1)
        value = Decimal(data.draw(st.integers(low, high))) * scale
    words = encode_span(span, value)
    assert len(words) == span.words and all(0 <= w <= 0xFFFF for w in words)
    assert decode_span(span, words) == value


@settings(max_examples=200)
@given(st.lists(st.integers(-70000, 70000), max_size=6), st.sampled_from(sorted(TYPE_WORDS)))
def test_malformed_words_raise_only_driver_errors(words: list[int], dtype: str) -> None:
    reg = Register("frequency", "Hz", (Span(4, 0, dtype, "big", Decimal("0.01")),))
    clean = [w & 0xFFFF for w in words]
    try:
        decode_register(reg, [clean])
    except DriverError as exc:  # a wrong word count, or a tiny float32 below the bounded range
        assert len(clean) != TYPE_WORDS[dtype] or "out of range" in str(exc)


def test_int64_times_huge_scale_is_a_frame_error() -> None:
    span = Span(4, 0, "int64", "big", Decimal("1E+30"))
    with pytest.raises(FrameError, match="out of range"):
        decode_span(span, [0x7FFF, 0xFFFF, 0xFFFF, 0xFFFF])


def test_ratio_out_of_range_is_a_frame_error() -> None:
    with pytest.raises(FrameError, match="out of range"):
        apply_ratio(Decimal("9223372036854775807"), "ct*vt", Decimal("1E+20"), Decimal(10))
    assert apply_ratio(Decimal(5), "ct", Decimal(0), Decimal(7)) == 0


extreme_scales = st.sampled_from([Decimal("1E+30"), Decimal("1E-30"), Decimal("1E-39"),
                                  Decimal("123456789.123456789"), Decimal("0.001"), Decimal(1),
                                  Decimal("99999999999999999")])
extreme_ratios = st.sampled_from([Decimal(1), Decimal(40), Decimal("1E+30"), Decimal("1E-38"),
                                  Decimal("3.333333333333333333")])


@settings(max_examples=400)
@given(st.sampled_from(sorted(TYPE_WORDS)), st.sampled_from(["big", "little"]), extreme_scales,
       st.sampled_from([None, "ct", "vt", "ct*vt"]), extreme_ratios, extreme_ratios,
       st.integers(0, (1 << 64) - 1))
@example("float32", "big", Decimal(1), None, Decimal(1), Decimal(1), 0x7F7FFFFF)
@example("int64", "big", Decimal("1E+30"), "ct*vt", Decimal("1E+30"), Decimal(40), 1 << 62)
def test_every_path_gives_a_bounded_value_or_a_frame_error(
        dtype: str, order: str, scale: Decimal, ratio: str | None, ct: Decimal, vt: Decimal,
        raw: int) -> None:
    n = TYPE_WORDS[dtype]
    words = [(raw >> (16 * (n - 1 - i))) & 0xFFFF for i in range(n)]
    reg = Register("frequency", "Hz", (Span(4, 0, dtype, order, scale),), ratio=ratio)
    try:
        value = decode_register(reg, [words])
        if value is not None:
            value = apply_ratio(value, ratio, ct, vt)
    except FrameError as exc:
        assert "out of range" in str(exc)
        return
    assert value is None or (within(value) == value and value.as_tuple().exponent <= 0)
