"""JSON codec of the control socket: exact round trips and clean errors on bad input."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.console.api import (
    BusCounters,
    CreditInfo,
    GatewayStatus,
    LogLine,
    MeterReading,
    MeterRow,
    Quantity,
)
from gateway.console.codec import CodecError, from_plain, to_plain

decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None)
times = st.datetimes(timezones=st.just(UTC))
text = st.text(max_size=20)
ints = st.integers(min_value=0, max_value=2**53)

SAMPLES: dict[type, Any] = {
    MeterRow: st.builds(MeterRow, text, text, text, st.none() | times, st.none() | text,
                        st.none() | decimals, text),
    MeterReading: st.builds(MeterReading, text, times,
                            st.lists(st.builds(Quantity, text, decimals | text, text))),
    GatewayStatus: st.builds(GatewayStatus, text, text, ints, times, ints, st.none() | ints,
                             text, ints, st.lists(st.builds(BusCounters, text, ints, ints, ints,
                                                            ints), max_size=3)),
    CreditInfo: st.builds(CreditInfo, text, decimals, text, st.booleans(), decimals,
                          st.none() | st.booleans()),
    LogLine: st.builds(LogLine, ints, times, text, text, st.none() | text, text),
}


@pytest.mark.parametrize("cls", list(SAMPLES))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip_through_json(cls: type, data: st.DataObject) -> None:
    value = data.draw(SAMPLES[cls])
    wire = json.loads(json.dumps(to_plain(value)))
    assert from_plain(cls, wire) == value


def test_decimal_stays_exact_and_distinct_from_text() -> None:
    q = Quantity("voltage_l1", Decimal("230.1"), "V")
    assert to_plain(q)["value"] == {"$dec": "230.1"}
    assert from_plain(Quantity, to_plain(Quantity("serial", "230.1", ""))).value == "230.1"


def test_errors_name_the_field() -> None:
    good = to_plain(CreditInfo("m", Decimal(1), "EUR", False, Decimal(0), None))
    good["balance"] = 1.5  # a float is refused: money is exact
    with pytest.raises(CodecError, match="balance"):
        from_plain(CreditInfo, good)
    with pytest.raises(CodecError, match="fields"):
        from_plain(CreditInfo, {"meter_id": "m"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_random_json_only_raises_codec_error(value: Any) -> None:
    for cls in (MeterRow, GatewayStatus, list[LogLine], datetime):
        with contextlib.suppress(CodecError):
            from_plain(cls, value)
