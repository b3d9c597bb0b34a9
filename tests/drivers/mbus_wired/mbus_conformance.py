"""Compare the gateway's decoding of a wired M-Bus corpus frame with the reference reader's
published values (libmbus's normalised XML: its wording, its units, floats with 6 decimals).

Only the reference's presentation is translated here (quantity names, `m^3`, seconds for
durations, `...:00Z` on times); every number is compared exactly as a Decimal.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from drivers.mbus.records import Record, RecordDecoder
from drivers.mbus.values import BCD_NIBBLES
from drivers.mbus_wired.responses import FixedHeader, RspUd

CORPUS: Final = Path(__file__).parents[2] / "corpus" / "mbus"

QUANTITY: Final = {
    "energy": "Energy", "volume": "Volume", "power": "Power", "volume_flow": "Volume flow",
    "flow_temperature": "Flow temperature", "return_temperature": "Return temperature",
    "temperature_difference": "Temperature difference",
    "external_temperature": "External temperature", "on_time": "On time",
    "operating_time": "Operating time", "averaging_duration": "Averaging Duration",
    "fabrication_number": "Fabrication No", "datetime": "Time point (date & time)",
    "date": "Time point (date)", "error_flags": "Error flags", "heat_cost_allocation": "H.C.A.",
    "voltage": "Voltage", "current": "Current", "dimensionless": "Dimensionless",
    "digital_input": "Digital Input", "digital_output": "Digital Output",
    "customer_location": "Customer location", "firmware_version": "Firmware version",
    "software_version": "Software version",
    "special_supplier_information": "Special supplier information",
    "enhanced_identification": "(Enhanced) Identification", "medium": "Medium",
    "manufacturer_specific": "Manufacturer specific",
}
FUNCTION: Final = {"instantaneous": "Instantaneous value", "maximum": "Maximum value",
                   "minimum": "Minimum value", "error": "Value during error state"}
# EN 13757-3 medium codes in the reference's wording (its ISO-8859-1 degree sign as it prints).
MEDIUM: Final = {0x00: "Other", 0x01: "Oil", 0x02: "Electricity", 0x03: "Gas",
                 0x04: "Heat: Outlet", 0x06: "Warm water (30-90Â°C)", 0x07: "Water",
                 0x08: "Heat Cost Allocator", 0x0C: "Heat: Inlet", 0x16: "Cold water"}
VARIABLE_LENGTH: Final = 0x0D
_SECONDS: Final = {"s": 1, "min": 60, "h": 3600, "d": 86400}


def load(name: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads((CORPUS / name).read_text())
    return entries


def header_values(header: FixedHeader) -> dict[str, str]:
    """The fixed header as the reference prints it (id without leading zeros, status hex)."""
    return {"manufacturer": header.manufacturer_text, "id": header.id.lstrip("0") or "0",
            "version": str(header.version), "medium": MEDIUM.get(header.medium, "?"),
            "access_number": str(header.access_number), "status": f"{header.status:02X}"}


def _number(record: Record, dif: int) -> Decimal | None:
    """The record's value as a number in the reference's unit, or None if it has none."""
    value = record.value
    if isinstance(value, str):   # identifiers: BCD digits, or a binary number shown as hex
        try:
            return Decimal(int(value, 10 if dif & 0x0F in BCD_NIBBLES else 16))
        except ValueError:
            return None
    if value is None:
        return None
    return value * _SECONDS.get(record.unit, 1) if record.kind.endswith(("_time", "duration")) \
        else value


def shown(record: Record, header: bytes) -> tuple[str | None, str | None, str | None]:
    """(function, quantity, value) of one record as the reference shows them."""
    dif = header[0]
    if dif in (0x0F, 0x1F):   # the data after the DIF, hex bytes upper case, space separated
        data = record.value if isinstance(record.value, str) else ""
        function = "More records follow" if dif == 0x1F else "Manufacturer specific"
        return function, None, " ".join(
            data[i:i + 2].upper() for i in range(0, len(data), 2)) or None
    quantity = record.unit if record.kind == "plain_text_unit" else QUANTITY.get(record.kind)
    function = FUNCTION[record.function]
    if record.kind in ("datetime", "date", "time"):
        text = record.value if isinstance(record.value, str) else None
        if text is not None and "T" in text:
            text += ":00Z" if len(text) == 16 else "Z"
        return function, quantity, text
    if dif & 0x0F == VARIABLE_LENGTH and isinstance(record.value, str):
        return function, quantity, record.value   # text (LVAR < 0xC0) as the meter wrote it
    number = _number(record, dif)
    return function, quantity, None if number is None else f"{number:.6f}"


def _place(value: str | None) -> str:
    return "0" if value is None else value


def compare(answer: RspUd, expected: dict[str, Any]) -> list[tuple[str, str]]:
    """Every expected value not reproduced: (record id or header field, what differs)."""
    misses: list[tuple[str, str]] = []
    assert isinstance(answer.header, FixedHeader)
    ours = header_values(answer.header)
    for key, text in ours.items():
        if expected.get(key) is not None and expected[key] != text:
            misses.append((key, f"{text} != {expected[key]}"))
    layout = RecordDecoder().layout(answer.payload)
    records = list(answer.records)
    for item in expected.get("records") or []:
        if item["value"] is None and item["function"] != "More records follow":
            continue   # the reference printed no value for this record
        index = int(item["id"])
        if index >= len(records):
            misses.append((item["id"], "no such record"))
            continue
        record = records[index]
        function, quantity, value = shown(record, layout[index][0])
        want = (item["function"], item["quantity"], item["value"],
                _place(item["storage"]), _place(item["tariff"]), _place(item["subunit"]))
        got = (function, quantity, value, str(record.storage), str(record.tariff),
               str(record.subunit))
        if got != want:
            misses.append((item["id"], f"{got} != {want}"))
    return misses


def expected_values(expected: dict[str, Any]) -> int:
    """How many values an entry's expectation holds (header fields and record values)."""
    header = sum(1 for key in ("manufacturer", "id", "version", "medium", "access_number",
                               "status") if expected.get(key) is not None)
    records = sum(1 for item in expected.get("records") or []
                  if item["value"] is not None or item["function"] == "More records follow")
    return header + records
