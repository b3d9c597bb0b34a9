"""Exact values: any Decimal or str survives the store; garbage blobs give StoreCorrupt only."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import codec
from storage.errors import InvalidRecord, StoreCorrupt
from storage.records import ReadingSet, StoredValue
from storage.store import Store

# Decimals built from raw tuples reach exponents and digit counts no context would produce.
RAW_DECIMALS = st.builds(
    lambda sign, digits, exponent: Decimal((sign, tuple(digits), exponent)),
    st.integers(0, 1),
    st.lists(st.integers(0, 9), max_size=60),
    st.integers(-(10**9), 10**9),
)
SPECIAL_DECIMALS = st.sampled_from(
    ["NaN", "-NaN", "sNaN", "NaN123", "Infinity", "-Infinity", "-0", "-0E-7", "0E+9", "-0.000"]
).map(Decimal)
VALUES = st.one_of(st.decimals(), RAW_DECIMALS, SPECIAL_DECIMALS, st.text(max_size=40))


def _same(a: Decimal | str, b: Decimal | str) -> bool:
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return a.as_tuple() == b.as_tuple()  # exact: sign, every digit, exponent, NaN payload
    return type(a) is type(b) and a == b


@pytest.fixture(scope="module")
def shared_store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "values.db")
        yield store
        store.close()


@settings(max_examples=150, deadline=None)
@given(values=st.lists(st.tuples(st.sampled_from(["q1", "q2_t1", "é"]), VALUES), max_size=8))
def test_any_value_round_trips_through_the_store(
    shared_store: Store, values: list[tuple[str, Decimal | str]]
) -> None:
    stored = tuple(StoredValue(q, v, "kWh") for q, v in values)
    [reading_id] = shared_store.add_readings([ReadingSet("prop", 1, stored)])
    [back] = shared_store.last_readings("prop", 1)
    assert back.id == reading_id
    assert len(back.values) == len(stored)
    for want, got in zip(stored, back.values, strict=True):
        assert (got.quantity, got.unit) == (want.quantity, want.unit)
        assert _same(want.value, got.value), (want.value, got.value)


@settings(max_examples=300, deadline=None)
@given(items=st.lists(st.tuples(st.integers(1, 2**40), VALUES), max_size=10))
def test_codec_round_trip(items: list[tuple[int, Decimal | str]]) -> None:
    decoded = codec.decode_items(codec.encode_items(items), "test")
    assert [qid for qid, _ in decoded] == [qid for qid, _ in items]
    assert all(_same(a, b) for (_, a), (_, b) in zip(items, decoded, strict=True))


def test_typical_value_is_compact() -> None:
    blob = codec.encode_items([(3, Decimal("230.1")), (4, Decimal("123456.789"))])
    # array head 1 + (qid 1 + mantissa 3 + exponent 1) + (qid 1 + mantissa 5 + exponent 1)
    assert len(blob) == 13


@settings(max_examples=400, deadline=None)
@given(blob=st.binary(max_size=64))
def test_garbage_blob_gives_store_corrupt_only(blob: bytes) -> None:
    try:
        codec.decode_items(blob, "reading 7")
    except StoreCorrupt as exc:
        assert "reading 7" in str(exc)


CBOR_ITEMS = st.recursive(
    st.one_of(st.integers(), st.text(max_size=5), st.binary(max_size=5), st.booleans(),
              st.none(), st.floats()),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=12,
)


@pytest.mark.parametrize("flat", [
    [1, 1, 10**30],  # an exponent Decimal cannot hold
    [1, 1, -(10**30)],
    [1, 10**5000, 0],  # a mantissa beyond Python's int-to-text limit
])
def test_value_out_of_reach_gives_store_corrupt(flat: list[object]) -> None:
    with pytest.raises(StoreCorrupt, match="reading 5: value out of range"):
        codec.decode_items(cbor2.dumps(flat), "reading 5")


@settings(max_examples=400, deadline=None)
@given(flat=st.lists(CBOR_ITEMS, max_size=8))
def test_wrong_shaped_cbor_gives_store_corrupt_only(flat: list[object]) -> None:
    try:
        codec.decode_items(cbor2.dumps(flat), "reading 9")
    except StoreCorrupt as exc:
        assert "reading 9" in str(exc)


def test_float_value_is_refused_by_name(shared_store: Store) -> None:
    bad = ReadingSet("m", 1, (StoredValue("voltage_l1", 230.1, "V"),))  # type: ignore[arg-type]
    with pytest.raises(InvalidRecord, match=r"voltage_l1.*float"):
        shared_store.add_readings([bad])
