"""OBIS codes: both text forms parse, format and round trip; anything else is not a code."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from drivers.obis.codes import ObisCode, parse_code

EXAMPLES = settings(max_examples=300, deadline=None)
group = st.integers(min_value=0, max_value=255).map(str)
channel = st.none() | st.tuples(group, group)
codes = st.builds(
    lambda ab, c, d, e, f: ObisCode(ab and ab[0], ab and ab[1], c, d, e, f),
    channel, group | st.sampled_from("CFLP"), group | st.just("F"), group, st.none() | group,
)


@pytest.mark.parametrize(("text", "code"), [
    ("1-0:1.8.1*255", ObisCode("1", "0", "1", "8", "1", "255")),
    ("1-0:1.8.1.255", ObisCode("1", "0", "1", "8", "1", "255")),
    ("1.8.1", ObisCode(None, None, "1", "8", "1", None)),
    ("32.7", ObisCode(None, None, "32", "7", "0", None)),
    ("F.F", ObisCode(None, None, "F", "F", "0", None)),
    ("C.1.0", ObisCode(None, None, "C", "1", "0", None)),
    ("1.8.1&01", ObisCode(None, None, "1", "8", "1", "01")),
    (" 0-1:24.2.1 ", ObisCode("0", "1", "24", "2", "1", None)),
])
def test_known_forms_parse(text: str, code: ObisCode) -> None:
    assert parse_code(text) == code


@pytest.mark.parametrize("text", [
    "", "1", "1-0:", "1-0:1", "1.8.1.255*1", "0.0.0.0.0.0.0", "X.1.0", "1.8.1*", "1:1.8.0",
    "1234.8.0", "1-0:1.8.1*255 junk",
])
def test_other_addresses_are_not_codes(text: str) -> None:
    assert parse_code(text) is None


def test_current_and_historic_values() -> None:
    assert ObisCode("1", "0", "1", "8", "1", None).current
    assert ObisCode("1", "0", "1", "8", "1", "255").current
    assert not ObisCode("1", "0", "1", "8", "1", "1").current


def test_text_forms() -> None:
    code = ObisCode("1", "0", "1", "8", "1", "255")
    assert code.text() == "1-0:1.8.1*255"
    assert code.text(dotted_f=True) == "1-0:1.8.1.255"
    assert ObisCode(None, None, "32", "7", "0", None).text() == "32.7.0"
    with pytest.raises(ValueError, match="A and B"):
        ObisCode("1", None, "1", "8", "0", None).text()


@EXAMPLES
@given(codes, st.booleans())
@example(ObisCode(None, None, "C", "F", "0", "0"), True)
def test_format_parse_round_trip(code: ObisCode, dotted_f: bool) -> None:
    assert parse_code(code.text(dotted_f=dotted_f)) == code


@EXAMPLES
@given(codes)
def test_canonical_text_round_trips(code: ObisCode) -> None:
    text = code.text()
    parsed = parse_code(text)
    assert parsed is not None and parsed.text() == text
