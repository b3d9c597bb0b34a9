"""The OBIS tables as data: every quantity they name exists, every documented unit converts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.numbers import OutOfRange
from core.quantities import QUANTITIES, base_name, is_known
from drivers.obis.tables import ABSTRACT, ELECTRICITY
from drivers.obis.units import DSMR_UNITS, UNIT_SCALE, scale_to


def test_every_table_names_a_known_quantity() -> None:
    for table in (ELECTRICITY, ABSTRACT):
        assert all(is_known(q) for q in table.values())
    assert ELECTRICITY[("1", "8", "2")] == "import_active_energy_t2"
    assert ELECTRICITY[("52", "7", "0")] == "voltage_l2"


def test_documented_units_convert_to_the_quantity_unit() -> None:
    for code, unit in DSMR_UNITS.items():
        assert unit in UNIT_SCALE, code
        quantity = ELECTRICITY.get(code)
        if quantity is not None:
            assert UNIT_SCALE[unit][0] == QUANTITIES[base_name(quantity)], code


def test_scaling_is_exact_and_bounded() -> None:
    assert scale_to(Decimal("2.589"), "kW", "W") == Decimal(2589)
    assert str(scale_to(Decimal("2.589"), "kW", "W")) == "2589"  # not 2.589E+3
    assert scale_to(Decimal("1234.5"), "Wh", "kWh") == Decimal("1.2345")
    assert scale_to(Decimal("1"), "kWh", "W") is None  # not the same dimension
    assert scale_to(Decimal("1"), "furlong", "kWh") is None
    with pytest.raises(OutOfRange):
        scale_to(Decimal("9" * 34), "MW", "W")  # 40 digits as an integer: beyond the 34
