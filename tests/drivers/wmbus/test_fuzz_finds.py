"""Frames `make fuzz` found that raised outside the error tree; each is refused or decoded now."""

from __future__ import annotations

import pytest

from drivers.errors import FrameError
from drivers.mbus.profiles import series_of
from drivers.wmbus.telegram import TelegramDecoder


def _wired(body: bytes) -> bytes:
    return bytes([0x68, len(body), len(body), 0x68]) + body + bytes([sum(body) & 0xFF, 0x16])


def test_wired_frame_longer_than_a_wireless_l_field_decodes() -> None:
    # L = 249: the synthetic wireless L byte overflowed (ValueError: bytes must be in range)
    body = bytes([0x08, 0x01, 0x72]) + bytes(246)  # C, A = 1, CI 0x72, header and records
    telegram = TelegramDecoder().decode(_wired(body))
    assert telegram.link_id == "primary:1" and telegram.ci_chain == ["72"]


def test_valid_format_b_crc_on_a_frame_too_short_for_its_header_is_refused() -> None:
    # 11 bytes with a valid format-B CRC: 9 bytes once stripped, header read out of range
    with pytest.raises(FrameError, match="no room for L C M A CI"):
        TelegramDecoder().decode(bytes.fromhex("0a440106813591041446c6"))


def test_profile_vife_on_a_date_record_is_a_series_with_its_problem() -> None:
    # a 0x1F (compact profile) VIFE after a date VIF in an LVAR: the value was a date text,
    # not the hex profiles.py reads (ValueError: non-hexadecimal number found in fromhex())
    frame = bytes.fromhex("1a44148633373737040d780e0186ec1b934ee91ba11f1f0059379f")   # format B
    telegram = TelegramDecoder().decode(frame)
    assert all(series.points == () and series.problem for series in series_of(telegram.records))
