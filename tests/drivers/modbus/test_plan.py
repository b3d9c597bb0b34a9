"""Request coalescing properties: full exact coverage, limits, minimal count."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import ProfileError
from drivers.modbus.plan import coalesce, plan_for
from drivers.modbus.profiles import load_profiles


@st.composite
def span_sets(draw):
    widths = draw(st.lists(st.sampled_from([1, 2, 4]), min_size=1, max_size=40))
    gaps = draw(st.lists(st.integers(0, 12), min_size=len(widths), max_size=len(widths)))
    spans, address = [], draw(st.integers(0, 1000))
    for width, gap in zip(widths, gaps, strict=True):
        address += gap
        spans.append((draw(st.sampled_from([3, 4])), address, width))
        address += width
    return spans


@settings(max_examples=200)
@given(span_sets(), st.integers(4, 125), st.integers(0, 10))
def test_every_span_in_exactly_one_request_within_limit(spans, limit, gap) -> None:
    requests = coalesce(spans, limit, max_gap=gap)
    for req in requests:
        assert 1 <= req.count <= limit
    for function, address, width in spans:
        holders = [r for r in requests if r.function == function
                   and r.address <= address and address + width <= r.end]
        assert len(holders) == 1
    for a in requests:  # no register read twice
        for b in requests:
            if a is not b and a.function == b.function:
                assert a.end <= b.address or b.end <= a.address


@settings(max_examples=200)
@given(st.integers(1, 300), st.integers(2, 125), st.integers(0, 500))
def test_contiguous_input_needs_the_minimum(n_pairs, limit, start) -> None:
    limit -= limit % 2
    spans = [(4, start * 2 + 2 * i, 2) for i in range(n_pairs)]
    requests = coalesce(spans, limit, even_aligned=True)
    assert len(requests) == math.ceil(2 * n_pairs / limit)
    assert all(r.address % 2 == 0 and r.count % 2 == 0 for r in requests)


def test_gap_bridged_only_when_allowed() -> None:
    spans = [(4, 0, 2), (4, 10, 2)]
    assert len(coalesce(spans, 125)) == 2
    assert len(coalesce(spans, 125, max_gap=8)) == 1


def test_misaligned_span_rejected_for_even_profiles() -> None:
    with pytest.raises(ProfileError):
        coalesce([(4, 1, 2)], 80, even_aligned=True)


def test_bundled_plans_respect_profiles() -> None:
    for profile in load_profiles().values():
        plan = plan_for(profile)
        assert all(r.count <= profile.max_registers for r in plan.requests)
        assert len(plan.slots) == len(profile.registers)
