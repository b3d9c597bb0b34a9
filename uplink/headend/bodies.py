"""Fast JSON text of a reading record's values, the head-end's hottest loop.

`record_body_json` turns every value into a `Decimal` and back to text; a worker at fleet
load does that for hundreds of thousands of values a second. This builds the same text
directly from the integer mantissa and exponent (`str(Decimal)` rules for plain notation) and
returns None for anything else (text, special values, scientific notation, bad entries,
a quantity twice), which then takes the exact general path, so the output never differs.
"""

import json
from typing import Any, Final

from uplink.quantity_codes import quantity_from_wire

# str(Decimal) switches to scientific notation below this adjusted exponent.
PLAIN_MIN_ADJUSTED: Final = -6
_NAMES: dict[int, str | None] = {}


def _quoted_name(q: object) -> str | None:
    if type(q) is int:
        if q not in _NAMES:
            name = quantity_from_wire(q)
            _NAMES[q] = None if name is None else json.dumps(name)
        return _NAMES[q]
    if type(q) is str:
        return json.dumps(q)
    return None


def decimal_text(m: int, e: int) -> str | None:
    """`str(Decimal(f"{m}E{e}"))` for plain-notation cases, else None."""
    if e > 0 or e <= -10_000:
        return None
    digits = str(-m if m < 0 else m)
    if len(digits) - 1 + e < PLAIN_MIN_ADJUSTED:
        return None
    sign = "-" if m < 0 else ""
    if e == 0:
        return sign + digits
    n = -e
    if len(digits) > n:
        return f"{sign}{digits[:-n]}.{digits[-n:]}"
    return f"{sign}0.{'0' * (n - len(digits))}{digits}"


def reading_body_json(fields: dict[str, Any]) -> str | None:
    flat = fields.get("v")
    meter = fields.get("m")
    if type(flat) is not list or len(flat) % 3 or not (meter is None or type(meter) is str):
        return None
    parts: list[str] = []
    seen: set[str] = set()
    for pos in range(0, len(flat), 3):
        q, m, e = flat[pos], flat[pos + 1], flat[pos + 2]
        name = _quoted_name(q)
        if name is None or type(m) is not int or type(e) is not int or name in seen:
            return None
        text = decimal_text(m, e)
        if text is None:
            return None
        seen.add(name)
        parts.append(f'{name}:"{text}"')
    return f'{{"meter":{json.dumps(meter)},"values":{{{",".join(parts)}}}}}'


# Largest exponent reading_values accepts (its Decimal is built exactly below this).
MAX_ABS_EXP: Final = 10_000
_VALID_CODES: set[int] = set()


def _codes_valid(codes: list[Any]) -> bool:
    for q in set(codes) - _VALID_CODES:
        if type(q) is not int or quantity_from_wire(q) is None:
            return False
        _VALID_CODES.add(q)
    return True


def wire_body_json(fields: dict[str, Any]) -> str | None:
    """The reading in its wire form `{"m": meter, "v": [q, mantissa, exp, ...]}`, checked as
    `reading_values` checks it but with C-speed set operations; None when the reading holds
    anything but integer triples with valid quantity codes (the general path takes it)."""
    flat = fields.get("v")
    meter = fields.get("m")
    if type(flat) is not list or not flat or len(flat) % 3 or type(meter) is not str:
        return None
    if set(map(type, flat)) != {int} or not _codes_valid(flat[0::3]):
        return None
    if max(map(abs, flat[2::3])) >= MAX_ABS_EXP:
        return None
    out: dict[str, Any] = {"m": meter, "v": flat}
    if "f" in fields:
        if type(fields["f"]) is not int:
            return None
        out["f"] = fields["f"]
    return json.dumps(out, separators=(",", ":"))


def readable_body(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """A stored body as the tools show it: wire-form readings become {meter, values} with
    quantity names and exact decimal text (the SQLite store's form)."""
    if kind != "reading" or "v" not in body:
        return body
    from uplink.codec import reading_values
    return {"meter": body.get("m"), "values": {q: str(v) for q, v in reading_values(body)}}
