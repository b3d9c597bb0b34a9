"""EN 13757-3 records: golden values, hypothesis round trips, fuzzing with malformed input."""

from __future__ import annotations

import contextlib
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from core.numbers import within
from drivers.errors import DriverError
from drivers.mbus import vif as V
from drivers.mbus.records import RecordDecoder, RecordSpec, decode_records, encode_record

INT_FIELDS = {0x1: 1, 0x2: 2, 0x3: 3, 0x4: 4, 0x6: 6, 0x7: 8}
BCD_FIELDS = {0x9: 1, 0xA: 2, 0xB: 3, 0xC: 4, 0xE: 6}
NUMERIC_VIFS = [code for code in range(0x7B) if V.PRIMARY[code].interpret == V.NUMBER]


def test_golden_records() -> None:
    payload = bytes.fromhex("0C13" "27854402" "046D" "3A1CBF14" "426C" "DF1C" "8B10" "2C" "123456"
                            "0DFD0E07302E38322E3142" "02FF2012AB" "0F0102")
    records = decode_records(payload)
    assert records[0].kind == "volume" and records[0].value == Decimal("2448.527")
    # 3A1CBF14 is hour 28 on 31 April 2013: no date-time, so no value, the bytes kept
    assert records[1].kind == "datetime" and records[1].value is None
    assert records[1].raw == bytes.fromhex("3A1CBF14")
    assert (records[2].kind, records[2].storage, records[2].value) == ("date", 1, "2014-12-31")
    assert (records[3].kind, records[3].tariff, records[3].storage) == ("power", 1, 0)
    assert records[3].value == Decimal(5634120)   # BCD 563412 x 10 W
    assert records[4].kind == "firmware_version" and records[4].value == "B1.28.0"
    assert records[5].kind == "manufacturer_specific" and records[5].value == "12ab"
    assert records[6].kind == "manufacturer_data" and records[6].value == "0102"


def test_datetime_type_f() -> None:
    # 31 May 2008 23:50 (the OMS example's record 04 6D 32 37 1F 15)
    assert decode_records(bytes.fromhex("046D32371F15"))[0].value == "2008-05-31T23:50"


def test_negative_bcd_and_invalid_bcd() -> None:
    assert decode_records(bytes.fromhex("0A5A12F0"))[0].value == Decimal("-1.2")
    assert decode_records(bytes.fromhex("0A5AFFFF"))[0].value == "invalid_bcd:ffff"


def test_real32_is_shortest_exact_decimal() -> None:
    assert decode_records(bytes.fromhex("0513") + b"\xcd\xcc\x8c\x3f")[0].value == Decimal(
        "0.0011")


def test_plan_cache_gives_same_records_as_fresh_walk() -> None:
    decoder = RecordDecoder()
    first = bytes.fromhex("0C1327854402" "02FD17" "0000")
    second = bytes.fromhex("0C1311111111" "02FD17" "0100")
    assert decoder.decode(first) == RecordDecoder().decode(first)
    assert decoder.decode(second) == RecordDecoder().decode(second)
    assert decoder.decode(second)[0].value == Decimal("11111.111")


specs = st.builds(
    RecordSpec,
    data_field=st.sampled_from(sorted(INT_FIELDS) + sorted(BCD_FIELDS)),
    vif=st.sampled_from(NUMERIC_VIFS),
    raw=st.integers(min_value=0, max_value=99),
    storage=st.integers(min_value=0, max_value=2**9 - 1),
    tariff=st.integers(min_value=0, max_value=15),
    subunit=st.integers(min_value=0, max_value=3),
    function=st.integers(min_value=0, max_value=3),
    vifes=st.just(()),
)


@st.composite
def spec_with_value(draw: st.DrawFn) -> RecordSpec:
    spec = draw(specs)
    if spec.data_field in INT_FIELDS:
        bits = INT_FIELDS[spec.data_field] * 8
        raw = draw(st.integers(min_value=-(2 ** (bits - 1)), max_value=2 ** (bits - 1) - 1))
    else:
        raw = draw(st.integers(min_value=0, max_value=10 ** (BCD_FIELDS[spec.data_field] * 2) - 1))
    return spec._replace(raw=raw)


@settings(max_examples=300, deadline=None)
@given(st.lists(spec_with_value(), min_size=1, max_size=8))
def test_encode_decode_round_trip(spec_list: list[RecordSpec]) -> None:
    payload = b"".join(encode_record(spec) for spec in spec_list)
    records = RecordDecoder().decode(payload)
    assert len(records) == len(spec_list)
    for spec, record in zip(spec_list, records, strict=True):
        info = V.PRIMARY[spec.vif]
        assert record.kind == info.kind and record.unit == info.unit
        assert record.value == Decimal(spec.raw).scaleb(info.exponent)
        assert (record.storage, record.tariff, record.subunit) == (
            spec.storage, spec.tariff, spec.subunit)
        assert record.function == ("instantaneous", "maximum", "minimum", "error")[spec.function]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120))
def test_fuzz_records_only_project_errors(payload: bytes) -> None:
    try:
        records = RecordDecoder().decode(payload)
    except DriverError:
        return
    for record in records:
        if isinstance(record.value, Decimal):
            assert within(record.value) == record.value  # inside core.numbers.BOUNDED
        else:
            assert isinstance(record.value, str) or record.raw is not None


@settings(max_examples=200, deadline=None)
@given(st.lists(spec_with_value(), min_size=1, max_size=5), st.data())
def test_fuzz_damaged_valid_payloads(spec_list: list[RecordSpec], data: st.DataObject) -> None:
    payload = bytearray(b"".join(encode_record(spec) for spec in spec_list))
    index = data.draw(st.integers(min_value=0, max_value=len(payload) - 1))
    payload[index] = data.draw(st.integers(min_value=0, max_value=255))
    cut = data.draw(st.integers(min_value=0, max_value=len(payload)))
    with contextlib.suppress(DriverError):
        RecordDecoder().decode(bytes(payload[:cut]))


def test_plain_text_vif_reads_its_vifes_after_the_text() -> None:
    # FC 03 'HR%' 74: the VIF's own bit 7 says a VIFE follows the text (libmbus corpus, Elvaco)
    from drivers.mbus.records import RecordDecoder

    payload = bytes.fromhex("01fc03255248740f" "0413" "78563412")
    records = RecordDecoder().decode(payload)
    assert records[0].unit == "HR%" and records[0].value is not None
    assert records[1].kind == "volume"
