"""EN 13757-3 VIF / VIFE code tables as data, precomputed per byte for fast lookup."""

from dataclasses import dataclass
from typing import Final

# Value interpretations a VIF can impose on the data field.
NUMBER: Final = "number"
DATE: Final = "date"            # type G
DATETIME: Final = "datetime"    # type F (or I when 6 bytes)
IDENT: Final = "ident"          # BCD/binary identifier kept as digits, not a quantity
TEXT: Final = "text"
RAW: Final = "raw"
COUNTER: Final = "counter"      # an unsigned binary count (access number): never negative


@dataclass(frozen=True, slots=True)
class VifInfo:
    """What a VIF (with its table) means: a description key, a unit and a power of ten."""

    kind: str       # e.g. "energy", "volume", "flow_temperature"
    unit: str       # SI-ish unit of the raw value after scaling ("Wh", "m3", "C", "s" ...)
    exponent: int   # value = raw * 10**exponent
    interpret: str = NUMBER


_TIME_UNITS: Final = ("s", "min", "h", "d")
_UNKNOWN: Final = VifInfo("unknown", "", 0, RAW)


def _primary() -> tuple[VifInfo, ...]:
    table = [_UNKNOWN] * 128
    for n in range(8):
        table[0x00 + n] = VifInfo("energy", "Wh", n - 3)
        table[0x08 + n] = VifInfo("energy", "J", n)
        table[0x10 + n] = VifInfo("volume", "m3", n - 6)
        table[0x18 + n] = VifInfo("mass", "kg", n - 3)
        table[0x28 + n] = VifInfo("power", "W", n - 3)
        table[0x30 + n] = VifInfo("power", "J/h", n)
        table[0x38 + n] = VifInfo("volume_flow", "m3/h", n - 6)
        table[0x40 + n] = VifInfo("volume_flow", "m3/min", n - 7)
        table[0x48 + n] = VifInfo("volume_flow", "m3/s", n - 9)
        table[0x50 + n] = VifInfo("mass_flow", "kg/h", n - 3)
    for n in range(4):
        table[0x20 + n] = VifInfo("on_time", _TIME_UNITS[n], 0)
        table[0x24 + n] = VifInfo("operating_time", _TIME_UNITS[n], 0)
        table[0x58 + n] = VifInfo("flow_temperature", "C", n - 3)
        table[0x5C + n] = VifInfo("return_temperature", "C", n - 3)
        table[0x60 + n] = VifInfo("temperature_difference", "K", n - 3)
        table[0x64 + n] = VifInfo("external_temperature", "C", n - 3)
        table[0x68 + n] = VifInfo("pressure", "bar", n - 3)
        table[0x70 + n] = VifInfo("averaging_duration", _TIME_UNITS[n], 0)
        table[0x74 + n] = VifInfo("actuality_duration", _TIME_UNITS[n], 0)
    table[0x6C] = VifInfo("date", "", 0, DATE)
    table[0x6D] = VifInfo("datetime", "", 0, DATETIME)
    table[0x6E] = VifInfo("heat_cost_allocation", "HCA", 0)
    table[0x78] = VifInfo("fabrication_number", "", 0, IDENT)
    table[0x79] = VifInfo("enhanced_identification", "", 0, IDENT)
    table[0x7A] = VifInfo("bus_address", "", 0, IDENT)
    return tuple(table)


def _extension_fd() -> tuple[VifInfo, ...]:
    """Second extension table (VIF 0xFD)."""
    table = [_UNKNOWN] * 128
    for n in range(4):
        table[0x00 + n] = VifInfo("credit", "currency", n - 3)
        table[0x04 + n] = VifInfo("debit", "currency", n - 3)
        table[0x24 + n] = VifInfo("storage_interval", _TIME_UNITS[n], 0)
        table[0x2C + n] = VifInfo("duration_since_readout", _TIME_UNITS[n], 0)
        table[0x68 + n] = VifInfo("duration_since_cumulation", _TIME_UNITS[n], 0)
        table[0x6C + n] = VifInfo("battery_operating_time", _TIME_UNITS[n], 0)
    for n in range(1, 4):
        table[0x30 + n] = VifInfo("tariff_duration", _TIME_UNITS[n], 0)
    idents = {
        0x08: "access_number", 0x09: "medium", 0x0A: "manufacturer",
        0x0B: "parameter_set", 0x0C: "model_version", 0x0D: "hardware_version",
        0x0E: "firmware_version", 0x0F: "software_version", 0x10: "customer_location",
        0x11: "customer", 0x12: "access_code_user", 0x13: "access_code_operator",
        0x14: "access_code_system_operator", 0x15: "access_code_developer", 0x16: "password",
        0x17: "error_flags", 0x18: "error_mask", 0x1A: "digital_output", 0x1B: "digital_input",
        0x1C: "baud_rate", 0x1D: "response_delay", 0x1E: "retry", 0x1F: "remote_control",
        0x20: "first_storage_number", 0x21: "last_storage_number", 0x22: "storage_block_size",
        0x2A: "operator_specific_data", 0x3A: "dimensionless", 0x60: "reset_counter",
        0x61: "cumulation_counter", 0x62: "control_signal", 0x63: "day_of_week",
        0x64: "week_number", 0x65: "day_change_time", 0x66: "parameter_activation_state",
        0x67: "special_supplier_information", 0x71: "rssi", 0x72: "daylight_saving",
        0x73: "listening_window", 0x74: "remaining_battery_days", 0x75: "stop_counter",
        0x76: "manufacturer_container",
    }
    for code, kind in idents.items():
        table[code] = VifInfo(kind, "", 0, IDENT if code < 0x20 else NUMBER)
    table[0x08] = VifInfo("access_number", "", 0, COUNTER)
    table[0x17] = VifInfo("error_flags", "", 0, IDENT)
    table[0x74] = VifInfo("remaining_battery", "d", 0)
    table[0x71] = VifInfo("rssi", "dBm", 0)
    table[0x70] = VifInfo("battery_change_datetime", "", 0, DATETIME)
    table[0x28] = VifInfo("storage_interval", "month", 0)
    table[0x29] = VifInfo("storage_interval", "year", 0)
    table[0x38] = VifInfo("tariff_period", "month", 0)
    table[0x39] = VifInfo("tariff_period", "year", 0)
    for n in range(4):
        table[0x34 + n] = VifInfo("tariff_period", _TIME_UNITS[n], 0)
    for n in range(16):
        table[0x40 + n] = VifInfo("voltage", "V", n - 9)
        table[0x50 + n] = VifInfo("current", "A", n - 12)
    return tuple(table)


def _extension_fb() -> tuple[VifInfo, ...]:
    """First extension table (VIF 0xFB)."""
    table = [_UNKNOWN] * 128
    for n in range(2):
        table[0x00 + n] = VifInfo("energy", "Wh", n + 5)          # MWh 10^(n-1)
        table[0x02 + n] = VifInfo("reactive_energy", "varh", n + 3)
        table[0x04 + n] = VifInfo("apparent_energy", "VAh", n + 3)
        table[0x08 + n] = VifInfo("energy", "J", n + 8)           # GJ 10^(n-1)
        table[0x10 + n] = VifInfo("volume", "m3", n + 2)
        table[0x18 + n] = VifInfo("mass", "kg", n + 5)            # t 10^(n+2)
        table[0x1A + n] = VifInfo("relative_humidity", "%", n - 1)
        table[0x28 + n] = VifInfo("power", "W", n + 5)            # MW 10^(n-1)
        table[0x2A + n] = VifInfo("phase_u_u", "deg", n - 1)
        table[0x2C + n] = VifInfo("phase_u_i", "deg", n - 1)
        table[0x30 + n] = VifInfo("power", "J/h", n + 8)          # GJ/h 10^(n-1)
    for n in range(4):
        table[0x0C + n] = VifInfo("energy", "cal", n + 3)         # MCal 10^(nn-3)
        table[0x14 + n] = VifInfo("reactive_power", "var", n - 3)
        table[0x34 + n] = VifInfo("apparent_power", "VA", n - 3)
        table[0x58 + n] = VifInfo("flow_temperature", "F", n - 3)
        table[0x5C + n] = VifInfo("return_temperature", "F", n - 3)
        table[0x60 + n] = VifInfo("temperature_difference", "F", n - 3)
        table[0x64 + n] = VifInfo("external_temperature", "F", n - 3)
        table[0x70 + n] = VifInfo("temperature_limit", "F", n - 3)
        table[0x74 + n] = VifInfo("temperature_limit", "C", n - 3)
    for n in range(8):
        table[0x78 + n] = VifInfo("max_power_count", "W", n - 3)
    table[0x21] = VifInfo("volume", "ft3", -1)
    table[0x22] = VifInfo("volume", "gal_us", -1)
    table[0x23] = VifInfo("volume", "gal_us", 0)
    table[0x24] = VifInfo("volume_flow", "gal_us/min", -3)
    table[0x25] = VifInfo("volume_flow", "gal_us/min", 0)
    table[0x26] = VifInfo("volume_flow", "gal_us/h", 0)
    table[0x2E] = VifInfo("frequency", "Hz", -3)
    table[0x2F] = VifInfo("frequency", "Hz", -2)
    return tuple(table)


PRIMARY: Final = _primary()
EXT_FB: Final = _extension_fb()
EXT_FD: Final = _extension_fd()
PLAIN_TEXT_VIF: Final = 0x7C
MANUFACTURER_VIF: Final = 0x7F
ANY_VIF: Final = 0x7E

# Combinable (orthogonal) VIFE codes that change what a value means; the rest are kept as codes.
VIFE_NAMES: Final[dict[int, str]] = {
    0x20: "per_second", 0x21: "per_minute", 0x22: "per_hour", 0x23: "per_day",
    0x24: "per_week", 0x25: "per_month", 0x26: "per_year", 0x27: "per_revolution",
    0x28: "per_input_pulse", 0x29: "per_output_pulse", 0x3A: "per_unit",
    0x3B: "forward", 0x3C: "backward", 0x3E: "value_at_phase", 0x7E: "future_value",
    # compact profiles (EN 13757-3:2018): the record's data is a dated series (profiles.py)
    0x13: "inverse_compact_profile", 0x1E: "compact_profile_registers", 0x1F: "compact_profile",
}
PROFILE_VIFES: Final = frozenset((0x13, 0x1E, 0x1F))
# Multiplicative correction factor 10^(nnn-6) (0x70..0x77) and 10^3 (0x7D) shift the exponent.
VIFE_EXPONENT_SHIFT: Final[dict[int, int]] = {0x70 + n: n - 6 for n in range(8)} | {0x7D: 3}
