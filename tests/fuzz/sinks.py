"""What every accepted reading must survive downstream: storage and the uplink's wire codec."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from core.numbers import OutOfRange, within
from drivers.readings import Sample
from storage.codec import decode_items, encode_items
from tests.fuzz.harness import InvariantViolation
from uplink.codec import reading_fields, reading_values
from uplink.errors import BadMessage


def check_samples(samples: Iterable[Sample]) -> int:
    """Raise InvariantViolation for a sample the store or the head-end would not take back."""
    items = list(samples)
    for sample in items:
        value = sample.value
        if not isinstance(value, Decimal | str) or not isinstance(sample.unit, str):
            raise InvariantViolation("value type", f"{sample.quantity}: {value!r}")
        if isinstance(value, Decimal):
            _check_number(sample.quantity, value)
    pairs = [(s.quantity, s.value) for s in items]
    try:
        back = reading_values(reading_fields("m", pairs))
    except BadMessage as exc:
        raise InvariantViolation("head-end refuses the reading", str(exc)) from None
    if back != pairs:
        raise InvariantViolation("uplink round trip", f"{pairs!r:.200} -> {back!r:.200}")
    blob = encode_items([(i, s.value) for i, s in enumerate(items)])
    if [v for _, v in decode_items(blob, "fuzz")] != [s.value for s in items]:
        raise InvariantViolation("storage round trip", f"{pairs!r:.200}")
    return len(items)


def _check_number(quantity: str, value: Decimal) -> None:
    if not value.is_finite():
        raise InvariantViolation("non-finite value", f"{quantity}: {value}")
    try:
        within(value)
    except OutOfRange:
        raise InvariantViolation(
            "value outside core.numbers bounds", f"{quantity}: {str(value)[:40]}") from None
