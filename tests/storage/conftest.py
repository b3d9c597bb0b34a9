"""Fixtures for the storage tests: a fresh store in a temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from storage.records import ReadingSet, StoredValue
from storage.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "gateway.db")
    yield opened
    opened.close()


def reading(meter: str, ts_ms: int, energy: str = "1234.5", flags: int = 0) -> ReadingSet:
    """A small reading set with a Decimal, a str and an integer-valued Decimal."""
    return ReadingSet(
        meter,
        ts_ms,
        (
            StoredValue("import_active_energy", Decimal(energy), "kWh"),
            StoredValue("voltage_l1", Decimal("230.1"), "V"),
            StoredValue("meter_time", "2026-11-23T10:00:00Z", ""),
        ),
        flags,
    )
