"""Wire codes for quantity names: small integers so a reading costs a byte for its name.

The table is append-only: a code once published never changes meaning (the head-end decodes
old batches with it). Tariff variants (`_t1`..`_t9`) carry the tariff in bits 8..11:
`code | tariff << 8`. A name not in the table goes on the wire as its text (the fallback).
"""

from typing import Final

from core.quantities import base_name

QUANTITY_CODES: Final[tuple[str, ...]] = (
    # 0..23 fit in one CBOR byte: the quantities every electricity meter reports.
    "import_active_energy", "export_active_energy", "import_reactive_energy",
    "export_reactive_energy", "total_active_energy", "total_reactive_energy",
    "voltage_l1", "voltage_l2", "voltage_l3", "current_l1", "current_l2", "current_l3",
    "active_power", "active_power_l1", "active_power_l2", "active_power_l3",
    "reactive_power", "apparent_power", "power_factor", "frequency", "voltage", "current",
    "current_n", "max_demand_active_power",
    # 24.. take two bytes.
    "voltage_l1_l2", "voltage_l2_l3", "voltage_l3_l1",
    "reactive_power_l1", "reactive_power_l2", "reactive_power_l3",
    "apparent_power_l1", "apparent_power_l2", "apparent_power_l3",
    "power_factor_l1", "power_factor_l2", "power_factor_l3",
    "volume", "flow", "heat_energy", "cooling_energy", "thermal_power", "flow_temperature",
    "return_temperature", "temperature_difference", "external_temperature",
    "heat_cost_allocator", "meter_datetime", "serial_number", "error_flags", "operating_time",
)
_CODE_OF: Final[dict[str, int]] = {name: code for code, name in enumerate(QUANTITY_CODES)}
TARIFF_SHIFT: Final = 8
MAX_TARIFF: Final = 9


def quantity_to_wire(quantity: str) -> int | str:
    """The wire form of a quantity name: its code (with tariff bits) or the name itself."""
    code = _CODE_OF.get(quantity)
    if code is not None:
        return code
    base = base_name(quantity)
    if base != quantity and base in _CODE_OF:
        return _CODE_OF[base] | int(quantity[-1]) << TARIFF_SHIFT
    return quantity


def quantity_from_wire(item: object) -> str | None:
    """The quantity name for a wire item, or None when the item is not a valid code or name."""
    if isinstance(item, str):
        return item
    if not isinstance(item, int) or isinstance(item, bool) or item < 0:
        return None
    code, tariff = item & 0xFF, item >> TARIFF_SHIFT
    if code >= len(QUANTITY_CODES) or tariff > MAX_TARIFF:
        return None
    return QUANTITY_CODES[code] + (f"_t{tariff}" if tariff else "")
