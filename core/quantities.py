"""The gateway's vocabulary of measured quantities: drivers map onto it, the rest reads it.

Drivers map their protocol's registers / OBIS codes / VIFs onto these names so that storage,
prepay and the head-end never need to know which protocol a value came from. A name may carry a
suffix for a tariff (`_t1`, `_t2` ...) or phase (`_l1`, `_l2`, `_l3`). Values are exact (Decimal).
"""

from functools import cache
from typing import Final

# name -> canonical unit
QUANTITIES: Final[dict[str, str]] = {
    # electricity, instantaneous
    "voltage": "V", "voltage_l1": "V", "voltage_l2": "V", "voltage_l3": "V",
    "voltage_l1_l2": "V", "voltage_l2_l3": "V", "voltage_l3_l1": "V",
    "current": "A", "current_l1": "A", "current_l2": "A", "current_l3": "A", "current_n": "A",
    "active_power": "W", "active_power_l1": "W", "active_power_l2": "W", "active_power_l3": "W",
    "reactive_power": "var", "reactive_power_l1": "var", "reactive_power_l2": "var",
    "reactive_power_l3": "var",
    "apparent_power": "VA", "apparent_power_l1": "VA", "apparent_power_l2": "VA",
    "apparent_power_l3": "VA",
    "power_factor": "", "power_factor_l1": "", "power_factor_l2": "", "power_factor_l3": "",
    "frequency": "Hz",
    "max_demand_active_power": "W",
    # electricity, registers (cumulative)
    "import_active_energy": "kWh", "export_active_energy": "kWh",
    "import_reactive_energy": "kvarh", "export_reactive_energy": "kvarh",
    "total_active_energy": "kWh", "total_reactive_energy": "kvarh",
    # reactive energy by quadrant (Q1 import inductive, Q2 export capacitive, Q3 export
    # inductive, Q4 import capacitive): what billing meters register (IEC 60870-5-102 R1..R4)
    "reactive_energy_q1": "kvarh", "reactive_energy_q2": "kvarh",
    "reactive_energy_q3": "kvarh", "reactive_energy_q4": "kvarh",
    # water / heat / gas
    "volume": "m3", "flow": "m3/h", "heat_energy": "kWh", "cooling_energy": "kWh",
    "thermal_power": "W", "flow_temperature": "C", "return_temperature": "C",
    "temperature_difference": "K", "external_temperature": "C",
    "heat_cost_allocator": "HCA",
    # the value at the last billing date (the meter's "target" value) and that date
    "volume_billing": "m3", "heat_energy_billing": "kWh", "cooling_energy_billing": "kWh",
    "heat_cost_allocator_billing": "HCA", "import_active_energy_billing": "kWh",
    "billing_date": "",
    # meter housekeeping
    "meter_datetime": "", "serial_number": "", "error_flags": "", "operating_time": "s",
}

# Cumulative registers that prepay charges from (by commodity).
CHARGEABLE: Final[dict[str, str]] = {
    "electricity": "import_active_energy",
    "water": "volume",
    "heat": "heat_energy",
}


# Registers that only accumulate (energy, volume, heat): interval consumption is the difference
# of two of their values, never an integral of power (gateway/analytics/intervals.py).
CUMULATIVE: Final[frozenset[str]] = frozenset({
    "import_active_energy", "export_active_energy", "import_reactive_energy",
    "export_reactive_energy", "total_active_energy", "total_reactive_energy",
    "reactive_energy_q1", "reactive_energy_q2", "reactive_energy_q3", "reactive_energy_q4",
    "volume", "heat_energy", "cooling_energy", "heat_cost_allocator",
})


def base_name(quantity: str) -> str:
    """Strip a tariff suffix (`_t1`..`_t9`) so `import_active_energy_t2` maps to its base."""
    head, _, tail = quantity.rpartition("_")
    if head and len(tail) == 2 and tail[0] == "t" and tail[1].isdigit():
        return head
    return quantity


def is_known(quantity: str) -> bool:
    return base_name(quantity) in QUANTITIES


@cache  # asked for every value of every reading by the analytics; the names are few
def is_cumulative(quantity: str) -> bool:
    """True for a cumulative register, a tariff register (`import_active_energy_t1`) included."""
    return base_name(quantity) in CUMULATIVE
