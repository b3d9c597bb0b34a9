"""Compact profiles (VIFE 0x13 / 0x1E / 0x1F): dated series against their base value and time."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import example, given
from hypothesis import strategies as st

from drivers.mbus.profiles import series_of
from drivers.mbus.records import decode_records
from drivers.wmbus.telegram import TelegramDecoder

# Real frames from /work/shared/corpus/wmbus/telegrams.json (wmbusmeters' test data), with the
# values the reference reader printed for them.
CALTOSE = ("5E44496A12180880FC087A7040500584A63344B5AF071A23539C6020CBBA81FA6ADCFE738682A0924D4F"
           "6F7D89D165C9144E4918CDC2D5F86BE7B5BD8143528273ACCC131A13D0B100F2540DC1F2C379DDE498"
           "4236D3BCA424113CF0EE1BBD")
CALTOSE_KEY = bytes.fromhex("DC7C9EF16126348CDFD52CE6567A9FFD")
UIWS = ("6E44496A6407336199077A361260252F2F046D22484136041301000000441300000080820F6C4136840F1301"
        "0000008D0F93132E34FE00000000000000800000008000000080000000800000008000000080000000800000"
        "008000000080000000800000008002FD1728000259340702656C07")


def test_heat_cost_allocator_monthly_history_is_a_dated_series() -> None:
    telegram = TelegramDecoder(lambda _m: CALTOSE_KEY).decode(bytes.fromhex(CALTOSE))
    [series] = series_of(telegram.records)
    assert (series.kind, series.spacing, series.mode) == ("heat_cost_allocation", "1 month",
                                                         "absolute")
    first = [(p.at, p.value) for p in series.points[:4]]
    assert first == [("2026-01-01", Decimal(627)), ("2025-12-01", Decimal(395)),
                     ("2025-11-01", Decimal(176)), ("2025-10-01", Decimal(7))]
    assert all(not r.modifiers or not r.modifiers[0].startswith("record_error")
               for r in telegram.records)


def test_water_meter_profile_marks_illegal_elements_as_no_value() -> None:
    telegram = TelegramDecoder().decode(bytes.fromhex(UIWS))
    [series] = series_of(telegram.records)
    assert series.points[0].at == "2026-05-01" and series.points[0].value == Decimal("0.000")
    assert [(p.at, p.value) for p in series.points[1:3]] == [("2026-04-01", None),
                                                             ("2026-03-01", None)]


def _profile(vife: int, control: int, spacing: int, elements: bytes) -> bytes:
    """A base volume 1 m3 (storage 8, litres), its date 2024-01-31 and a profile record."""
    return (bytes.fromhex("840413") + (1000).to_bytes(4, "little")
            + bytes.fromhex("82046C1F31")
            + bytes([0x8D, 0x04, 0x93, vife, 2 + len(elements), control, spacing]) + elements)


def test_increments_accumulate_forward_from_the_base_value() -> None:
    payload = _profile(0x1F, 0x71, 0xFE, bytes([5, 7, 0xFF]))   # increments, 1 month, 1 byte
    [series] = series_of(decode_records(payload))
    assert [(p.at, p.value) for p in series.points] == [
        ("2024-02-29", Decimal("1.005")), ("2024-03-31", Decimal("1.012"))]


def test_inverse_decrements_go_back_in_time() -> None:
    payload = _profile(0x13, 0x81, 0x01, bytes([3, 4]))   # decrements, 1 s spacing
    [series] = series_of(decode_records(payload))
    assert [p.value for p in series.points] == [Decimal("1.003"), Decimal("1.007")]
    assert series.points[0].at == "2024-01-30T23:59:59"


def test_reserved_spacing_gives_no_points_and_the_reason() -> None:
    [series] = series_of(decode_records(_profile(0x1F, 0x01, 0xFB, bytes([1, 2]))))
    assert series.points == () and "reserved" in series.problem


@given(st.sampled_from([0x13, 0x1E, 0x1F]), st.integers(0, 255), st.integers(0, 255),
       st.binary(max_size=60))
@example(0x1F, 0x0D, 0x00, b"")
@example(0x13, 0xF3, 0xFD, b"\x80\x00\x00")
def test_any_profile_bytes_give_a_series_never_an_exception(vife: int, control: int,
                                                           spacing: int, data: bytes) -> None:
    [series] = series_of(decode_records(_profile(vife, control, spacing, data)))
    assert len(series.points) <= len(data)
    assert all(p.value is None or isinstance(p.value, Decimal) for p in series.points)
