"""OBIS codes -> gateway quantities (core.quantities), as data: (C, D, E) -> quantity name.

The tables name what a code measures; which codes a protocol maps (the meter's own channel, B
absent or 0, and current values only for IEC 62056-21 readouts) is that protocol's mapping.
"""

from __future__ import annotations

from typing import Final

CodeKey = tuple[str, str, str]  # (C, D, E) as written: ObisCode.cde


def _electricity_table() -> dict[CodeKey, str]:
    table: dict[CodeKey, str] = {}
    registers = {"1": "import_active_energy", "2": "export_active_energy",
                 "3": "import_reactive_energy", "4": "export_reactive_energy"}
    for c, name in registers.items():
        table[(c, "8", "0")] = name
        for tariff in range(1, 10):
            table[(c, "8", str(tariff))] = f"{name}_t{tariff}"
    for phase, (u, i, p) in enumerate((("32", "31", "21"), ("52", "51", "41"),
                                       ("72", "71", "61")), start=1):
        table[(u, "7", "0")] = f"voltage_l{phase}"
        table[(i, "7", "0")] = f"current_l{phase}"
        table[(p, "7", "0")] = f"active_power_l{phase}"
    table[("1", "7", "0")] = "active_power"
    table[("14", "7", "0")] = "frequency"
    table[("1", "6", "0")] = "max_demand_active_power"
    return table


# Electricity (group A = 1, or absent in an optical readout).
ELECTRICITY: Final[dict[CodeKey, str]] = _electricity_table()
# Abstract objects (group A = 0 or absent).
ABSTRACT: Final[dict[CodeKey, str]] = {
    ("C", "1", "0"): "serial_number",
    ("96", "1", "1"): "serial_number",  # DSMR equipment identifier, hex-encoded ASCII
    ("F", "F", "0"): "error_flags",
}
TIME_CODE: Final[CodeKey] = ("0", "9", "1")
DATE_CODE: Final[CodeKey] = ("0", "9", "2")
# 0-0:1.0.0: the DLMS clock object; DSMR sends it as a timestamp `(YYMMDDhhmmssX)`
DSMR_TIMESTAMP_CODE: Final[CodeKey] = ("1", "0", "0")
