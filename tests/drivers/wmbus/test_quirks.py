"""Manufacturer quirks: the registry, the layouts, PRIOS descrambling, CI refusals, billing."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core.quantities import is_known
from drivers.errors import DriverError, FrameError
from drivers.mbus.records import RecordDecoder, RecordSpec, encode_record
from drivers.wmbus import security as sec
from drivers.wmbus.billing import telegram_readings_with_billing, telegram_samples_with_billing
from drivers.wmbus.builder import build_frame, build_payload
from drivers.wmbus.ci_names import refusal
from drivers.wmbus.quirks import apply
from drivers.wmbus.quirks.formats import UINT_BE, Field, FixedLayout, Sum, TaggedLayout
from drivers.wmbus.quirks.makes import APATOR_162, QUIRKS
from drivers.wmbus.quirks.registry import Quirk, QuirkRegistry
from drivers.wmbus.telegram import TelegramDecoder

# Real frames from /work/shared/corpus/wmbus/telegrams.json (wmbusmeters' test data):
TECHEM_MKRADIO3 = ("2F446850313233347462A2069F255900B02931000000030606090603060907060605050905"
                   "0505050407040605070500")
APATOR_162_FRAME = ("2E4401064052030205077A2D0020852F2F0F334DA39A00000071011ABF0D00039A0D00A0105385"
                    "0310CECC0D008943")
QUNDIS_QWATER = ("49449344954933131706780DFF5F3500823A0000600107C113FFFF29970300FF2C580303001E3B"
                 "269703000A006500750073005B0070007D0061005B004200160000002F046D1E0F113C")


def _by_kind(telegram: object, kind: str, storage: int = 0) -> object:
    return next(r.value for r in telegram.records  # type: ignore[attr-defined]
                if r.kind == kind and r.storage == storage)


def test_techem_water_meter_gives_register_billing_value_and_date() -> None:
    telegram = TelegramDecoder().decode(bytes.fromhex(TECHEM_MKRADIO3))
    assert telegram.quirk == "techem_mkradio3" and telegram.billing_storage == 1
    assert _by_kind(telegram, "volume") == Decimal("13.8")   # billing value + since then
    assert _by_kind(telegram, "volume", 1) == Decimal("8.9")
    assert _by_kind(telegram, "date", 1) == "2018-12-31"
    assert telegram.records[-1].kind == "manufacturer_data"   # the bytes stay, named raw


def test_apator_162_volume_from_its_tag_coded_payload() -> None:
    telegram = TelegramDecoder().decode(bytes.fromhex(APATOR_162_FRAME))
    assert telegram.quirk == "apator162"
    assert _by_kind(telegram, "volume") == Decimal("904.398")


def test_qundis_block_gives_the_month_end_value_as_billing_storage() -> None:
    telegram = TelegramDecoder().decode(bytes.fromhex(QUNDIS_QWATER))
    assert telegram.billing_storage == 17
    assert _by_kind(telegram, "volume") == Decimal("39.729")
    assert _by_kind(telegram, "volume", 1) == Decimal("30.358")
    assert isinstance(_by_kind(telegram, "date", 17), str)


@pytest.mark.parametrize(("ci", "words"), [
    (0x6B, "format frame"), (0x71, "alarm"), (0x6C, "clock synchronisation"),
    (0x8A, "no application data"), (0xA5, "manufacturer-specific"), (0x42, "unsupported"),
])
def test_other_cis_are_refused_with_their_name(ci: int, words: str) -> None:
    frame = bytearray(build_frame("ABC", "12345678", 1, 7, b"\x01\x13\x05"))
    frame[10] = ci
    with pytest.raises(FrameError, match=words):
        TelegramDecoder().decode(bytes(frame))
    assert words in refusal(ci)


def test_registry_prefers_the_specific_entry() -> None:
    general = Quirk("any", "XYZ")
    specific = Quirk("v3", "XYZ", frozenset({3}), frozenset({7}))
    registry = QuirkRegistry([general, specific])
    assert registry.find("XYZ", 3, 7) is specific
    assert registry.find("XYZ", 4, 7) is general
    assert registry.find("ABC", 3, 7) is None
    assert QUIRKS.find("TCH", 0x74, 0x62).name == "techem_mkradio3"   # type: ignore[union-attr]


def test_every_quirk_compact_format_is_a_fixed_layout() -> None:
    for quirk in QUIRKS.all():
        for headers in quirk.compact_formats:
            layout = apply.format_layout(headers)
            assert b"".join(h for h, _ in layout) == headers


_SPEC = st.builds(
    RecordSpec, data_field=st.sampled_from([1, 2, 3, 4, 6, 7, 0x9, 0xA, 0xB, 0xC, 0xE]),
    vif=st.sampled_from([0x03, 0x06, 0x13, 0x15, 0x2B, 0x3B, 0x5B, 0x5F, 0x6E]),
    raw=st.just(0), storage=st.integers(0, 40), tariff=st.integers(0, 3),
    subunit=st.integers(0, 1), function=st.integers(0, 3),
    vifes=st.sampled_from([(), (0x3C,), (0x74,)]))


@given(st.lists(_SPEC, min_size=1, max_size=12))
def test_format_layout_equals_the_record_walk(specs: list[RecordSpec]) -> None:
    payload = build_payload(specs)
    layout = RecordDecoder().layout(payload)
    assert apply.format_layout(b"".join(h for h, _ in layout)) == layout


@given(st.binary(max_size=80))
@example(b"\x0f" + bytes(7) + b"\x10\xff")
def test_tagged_layout_takes_any_bytes(data: bytes) -> None:
    records = TaggedLayout(skip=0, sizes={0x10: 4, 0x11: 2}, values={
        0x10: Field(0, 4, "volume", "m3", -3)}).decode(data)
    assert all(r.kind == "volume" and isinstance(r.value, Decimal) for r in records)
    with pytest.raises(FrameError):
        APATOR_162.decode(b"\x2f\x2f\x01" + data)   # no 0x0F / 0x80 lead byte


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 30))
def test_fixed_layout_values_and_sum(first: int, second: int, offset: int) -> None:
    layout = FixedLayout(fields=(Field(offset, 2, "volume", "m3", -1, storage=1),
                                 Field(offset + 2, 2, "x", "m3", -1, UINT_BE)),
                         sums=(Sum("volume", "m3", (0, 1)),))
    data = bytes(offset) + first.to_bytes(2, "little") + second.to_bytes(2, "big")
    records = layout.decode(data)
    assert [r.value for r in records] == [Decimal(first).scaleb(-1), Decimal(second).scaleb(-1),
                                          Decimal(first + second).scaleb(-1)]
    with pytest.raises(FrameError):
        layout.decode(data[:-1])


@given(st.binary(min_size=8, max_size=8), st.binary(min_size=5, max_size=5),
       st.binary(min_size=1, max_size=40), st.binary(min_size=16, max_size=16))
def test_prios_descramble_inverts_the_keystream(header: bytes, head: bytes, tail: bytes,
                                                key: bytes) -> None:
    plain = bytes([apply.PRIOS_CHECK]) + tail
    stream = apply.prios_stream(header, head, key, len(plain))
    body = head + bytes(a ^ b for a, b in zip(plain, stream, strict=True))
    assert apply.descramble(header, body, key, "m") == plain
    # another seed top byte flips every bit of the first keystream byte: the check byte fails
    with pytest.raises(sec.WrongKey):
        apply.descramble(header, body, bytes([key[0] ^ 0xFF]) + key[1:], "m")


@given(st.binary(max_size=60))
def test_quirk_layouts_raise_only_project_errors(data: bytes) -> None:
    for quirk in QUIRKS.all():
        for layout in (*quirk.ci_layouts.values(), quirk.mfct_layout, quirk.tpl_layout):
            if layout is None:
                continue
            with contextlib.suppress(DriverError):
                layout.decode(data)


def test_encoded_record_bytes_cover_a_compact_header() -> None:
    record = encode_record(RecordSpec(0x4, 0x13, 5, storage=1))
    assert apply.format_layout(record[:-4]) == ((record[:-4], 4),)


QUNDIS_QHEAT = ("58449344798995673E377807797989956793443E040DFF5F3500827D0000810007C006FFFF5311000"
                "03F3C490900005F318010000083003C0022000B0000000000000000000A002B00510083002F02FD17"
                "0000046D16085832")


def test_billing_value_and_date_are_samples_from_the_storage_the_quirk_names() -> None:
    samples = {s.quantity: s.value for s in telegram_samples_with_billing(
        TelegramDecoder().decode(bytes.fromhex(TECHEM_MKRADIO3)))}
    assert samples["volume"] == Decimal("13.8")
    assert samples["volume_billing"] == Decimal("8.9")
    assert samples["billing_date"] == "2018-12-31"
    assert all(is_known(name) for name in samples)


def test_qundis_billing_is_the_month_end_value_in_both_units() -> None:
    decoder = TelegramDecoder()
    for _ in range(2):   # the second pass reuses the cached selections of both layouts
        water = dict((s.quantity, s.value) for s in telegram_readings_with_billing(
            decoder.decode(bytes.fromhex(QUNDIS_QWATER)))[0])
        heat = dict((s.quantity, s.value) for s in telegram_readings_with_billing(
            decoder.decode(bytes.fromhex(QUNDIS_QHEAT)))[0])
        assert (water["volume"], water["billing_date"]) == (Decimal("39.729"), "2024-11-30")
        assert water["volume_billing"] == Decimal("39.726")
        assert (heat["heat_energy"], heat["heat_energy_billing"]) == (Decimal(1153), Decimal(1080))
        assert heat["billing_date"] == "2026-01-31"
