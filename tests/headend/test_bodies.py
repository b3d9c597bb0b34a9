"""The fast reading JSON is byte for byte the general path's output, for any values."""

import json
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from uplink.codec import reading_values
from uplink.headend.bodies import decimal_text, reading_body_json


def general(fields: dict[str, Any]) -> str:
    return json.dumps({"meter": fields.get("m"),
                       "values": {q: str(v) for q, v in reading_values(fields)}},
                      separators=(",", ":"))


@given(st.integers(-10**30, 10**30), st.integers(-40, 5))
def test_decimal_text_matches_decimal(m: int, e: int) -> None:
    text = decimal_text(m, e)
    assert text is None or text == str(Decimal(f"{m}E{e}"))


triple = st.tuples(st.integers(0, 60) | st.sampled_from(["x_name", "import_active_energy"]),
                   st.integers(-10**12, 10**12), st.integers(-9, 2))


@given(st.text(max_size=5), st.lists(triple, max_size=12))
def test_reading_body_matches_general_path(meter: str, values: list[tuple[Any, int, int]]
                                           ) -> None:
    fields = {"m": meter, "v": [x for t in values for x in t]}
    fast = reading_body_json(fields)
    try:
        expected = general(fields)
    except Exception:
        assert fast is None  # what the general path refuses, the fast path does not take
        return
    assert fast is None or fast == expected


@given(st.text(max_size=5), st.lists(triple, max_size=12))
def test_wire_body_reads_back_as_the_general_path(meter: str,
                                                  values: list[tuple[Any, int, int]]) -> None:
    from uplink.headend.bodies import readable_body, wire_body_json
    fields = {"m": meter, "v": [x for t in values for x in t]}
    wire = wire_body_json(fields)
    try:
        expected = json.loads(general(fields))
    except Exception:
        assert wire is None
        return
    assert wire is None or readable_body("reading", json.loads(wire)) == expected
