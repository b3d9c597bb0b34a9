"""The decoder's fast paths give exactly what the bounded paths give.

values.py proves that n x 10^e with |n| < 10^20 and |e| <= 12 cannot signal under BOUNDED, so the
integer converters skip the context check there; records.py inlines them in its decode loop; the
date and time checks use a month table instead of datetime. Each is compared here with the
reference that runs BOUNDED (or datetime) every time: same value, same digits and exponent.
"""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal, DecimalException

from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.numbers import BOUNDED, OutOfRange
from drivers.mbus import records as R
from drivers.mbus import values as X
from drivers.mbus import vif as V

INT_SIZES = {0x1: 1, 0x2: 2, 0x3: 3, 0x4: 4, 0x6: 6, 0x7: 8}
BCD_SIZES = {0x9: 1, 0xA: 2, 0xB: 3, 0xC: 4, 0xE: 6}
NUMERIC = [code for code in range(0x7B) if V.PRIMARY[code].interpret == V.NUMBER]
SHIFTS = sorted(V.VIFE_EXPONENT_SHIFT)
LIMIT = X.PROVEN_LIMIT - 1
EXP = X.PROVEN_EXPONENT


def bounded_or_none(number: int, exponent: int) -> Decimal | None:
    try:
        return X.scaled_bounded(number, exponent)
    except (DecimalException, OutOfRange):
        return None


def same(fast: object, reference: object) -> bool:
    """Equal and written the same (digits and exponent), not merely equal in value."""
    if isinstance(fast, Decimal) and isinstance(reference, Decimal):
        return fast.as_tuple() == reference.as_tuple()
    return fast == reference


@settings(max_examples=2000, deadline=None)
@given(st.integers(-LIMIT, LIMIT), st.integers(-EXP, EXP))
@example(LIMIT, EXP)
@example(-LIMIT, EXP)
@example(LIMIT, -EXP)
@example(0, EXP)
@example(0, -EXP)
@example(-(2**63), EXP)
def test_proven_scaling_equals_the_bounded_path(number: int, exponent: int) -> None:
    reference = X.scaled_bounded(number, exponent)   # never raises inside the proven range
    assert same(X._scaled(number, exponent), reference)
    assert BOUNDED.plus(reference).as_tuple() == reference.as_tuple()   # already in bounds


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(sorted(INT_SIZES.values())), st.integers(-EXP - 3, EXP + 3), st.data())
def test_int_converters_equal_the_bounded_path(size: int, exponent: int, data: st.DataObject
                                               ) -> None:
    low, high = -(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1
    number = data.draw(st.sampled_from([low, high, 0, 1, -1]) | st.integers(low, high))
    raw = number.to_bytes(size, "little", signed=True)
    reference = bounded_or_none(number, exponent)
    power = X.proven_power(size, exponent)
    if power is not None:
        assert reference is not None
        assert same(X.int_value_up(raw, exponent), reference)
        assert same(Decimal(number * power), reference)   # what the decode loop computes
    try:
        fast: Decimal | None = X.int_value(raw, exponent)
    except (DecimalException, OutOfRange):
        fast = None
    assert same(fast, reference)


@st.composite
def numeric_record(draw: st.DrawFn) -> bytes:
    """One integer or BCD record with a primary VIF and up to 4 exponent VIFEs."""
    bcd = draw(st.booleans())
    field = draw(st.sampled_from(sorted(BCD_SIZES if bcd else INT_SIZES)))
    size = (BCD_SIZES if bcd else INT_SIZES)[field]
    if bcd:
        top = 10 ** (2 * size) - 1
        raw = draw(st.sampled_from([0, 1, top]) | st.integers(0, top))
        data = bytes.fromhex(f"{raw:0{2 * size}d}")[::-1]
    else:
        low, high = -(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1
        raw = draw(st.sampled_from([low, high, 0, 1, -1]) | st.integers(low, high))
        data = raw.to_bytes(size, "little", signed=True)
    code = draw(st.sampled_from(NUMERIC))
    chain = [code, *draw(st.lists(st.sampled_from(SHIFTS), max_size=4))]
    header = [c | (0x80 if i < len(chain) - 1 else 0) for i, c in enumerate(chain)]
    storage = draw(st.integers(0, 1))
    return bytes([field | storage << 6, *header]) + data


def reference_value(step: tuple, payload: bytes) -> Decimal | str | None:
    data = payload[step[R.START]:step[R.END]]
    convert, exponent = step[R.CONVERT], step[R.EXPONENT]
    if convert in (X.int_value, X.int_value_fast, X.int_value_up):
        return bounded_or_none(int.from_bytes(data, "little", signed=True), exponent)
    try:
        return convert(data, exponent)
    except (DecimalException, OutOfRange):
        return None


@settings(max_examples=1000, deadline=None)
@given(st.lists(numeric_record(), min_size=1, max_size=8))
@example([bytes([0x07, 0x07]) + (2**63 - 1).to_bytes(8, "little")])        # 8 bytes x 10^4 Wh
@example([bytes([0x07, 0x87, 0x7D]) + (-(2**63)).to_bytes(8, "little", signed=True)])  # 10^7
@example([bytes([0x04, 0x06]) + (123456).to_bytes(4, "little")] * 3)
def test_the_decode_loop_equals_the_bounded_path(records: list[bytes]) -> None:
    payload = b"".join(records)
    decoder = R.RecordDecoder()
    for _ in range(2):   # the walk that builds the plan, then the cached plan
        decoded, plan, _fresh = decoder.decode_plan(payload)
        assert isinstance(plan, R._Plan)
        assert len(decoded) == len(plan.steps) == len(records)
        for record, step in zip(decoded, plan.steps, strict=True):
            reference = reference_value(step, payload)
            assert same(record.value, reference)
            if reference is None:
                data = payload[step[R.START]:step[R.END]]
                assert record.raw == data and "out of range" in record.error
            else:
                assert (record.raw, record.error) == (None, "")
            assert record == R._record(step, payload)   # the one-by-one (fallback) path agrees


# ---- dates and times: month table and range checks vs datetime ----------------------------

def reference_date_g(raw: bytes) -> str | None:
    day, month = raw[0] & 0x1F, raw[1] & 0x0F
    year = ((raw[0] & 0xE0) >> 5) | ((raw[1] & 0xF0) >> 1)
    if year > 99:
        return None
    try:
        return date(2000 + year, month, day).isoformat()
    except ValueError:
        return None


def reference_clock(hour: int, minute: int, second: int | None) -> str | None:
    try:
        moment = time(hour, minute, second or 0)
    except ValueError:
        return None
    return moment.isoformat("minutes" if second is None else "seconds")


def test_type_g_dates_equal_datetime_for_every_input() -> None:
    for value in range(1 << 16):
        raw = value.to_bytes(2, "little")
        assert X.date_g(raw) == reference_date_g(raw), raw.hex()


def test_clock_equals_datetime_for_every_input() -> None:
    for hour in range(32):        # the 5-bit hour field
        for minute in range(64):  # the 6-bit minute / second fields
            assert X._clock(hour, minute, None) == reference_clock(hour, minute, None)
            for second in range(64):
                assert X._clock(hour, minute, second) == reference_clock(hour, minute, second)


def test_the_plan_takes_the_fast_paths_where_proven() -> None:
    payload = bytes.fromhex("0406 40E20100" "0413 06120F00" "0D06 E4 40E20100"
                            "0D06 E9 40E201000000000000")
    records, plan, _fresh = R.RecordDecoder().decode_plan(payload)
    assert isinstance(plan, R._Plan)
    kwh, litres, lvar4, lvar9 = ((s[R.CONVERT], s[R.FACTOR], s[R.EXPONENT]) for s in plan.steps)
    assert kwh == (X.int_value_up, 1000, 3)       # Wh x 10^3, 4 bytes: proven
    assert litres == (X.int_value_fast, 1, -3)    # scaleb under BOUNDED
    assert lvar4 == (X.int_value_up, 1000, 3)     # a 4-byte LVAR int: proven
    assert lvar9 == (X.int_value, 1, 3)           # 9 bytes: the checked path
    assert [r.value for r in records] == [Decimal(123456000), Decimal("987.654"),
                                          Decimal(123456000), Decimal(123456000)]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(numeric_record(), min_size=1, max_size=4), min_size=2, max_size=4),
       st.sampled_from([b"", b"\x2f\x2f", b"\x2f"]))
def test_a_cached_plan_is_used_only_for_its_own_headers(payloads: list[list[bytes]],
                                                        filler: bytes) -> None:
    # same-length payloads with other DIF/VIF bytes (or fillers elsewhere) get their own plan
    shared = R.RecordDecoder()
    for records in payloads + payloads[::-1]:
        payload = filler + b"".join(records)
        assert shared.decode(payload) == R.RecordDecoder().decode(payload)
        assert shared.layout(payload) == R.RecordDecoder().layout(payload)
        at = len(filler) + 1   # the first record's VIF: another code, same length and sizes
        other = payload[at] & 0x80 | NUMERIC[(NUMERIC.index(payload[at] & 0x7F) + 1) % len(NUMERIC)]
        changed = payload[:at] + bytes([other]) + payload[at + 1:]
        assert shared.decode(changed) == R.RecordDecoder().decode(changed)
