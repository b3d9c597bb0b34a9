"""Exact decoding: float32 shortest round trip, integer scales, word orders, real captures."""

import math
import struct
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import DriverError
from drivers.modbus.decode import (
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


@settings(max_examples=300)
@given(st.integers(0, 0xFFFFFFFF))
def test_float32_shortest_round_trip(bits: int) -> None:
    value = float32_bits_to_decimal(bits)
    (as_float,) = struct.unpack(">f", bits.to_bytes(4, "big"))
    if not math.isfinite(as_float):
        assert value is None
        return
    assert value is not None
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
    except DriverError:
        assert len(clean) != TYPE_WORDS[dtype]
