"""Units of OBIS-coded values and their exact conversion to the gateway's units, as data.

A value that carries its unit (`1.7.0(01.193*kW)`) is converted exactly. A value without one gets
the unit its OBIS code is documented with, never a guess: for DSMR telegrams that is the table of
the P1 companion standard 5.0.2 (section 6.12) below; IEC 62056-21 documents no units per code, so
an optical readout's value without a unit is refused. Every operation runs under the bounded
context of core.numbers: a value it cannot hold raises `OutOfRange`, which a protocol's mapping
turns into a `FrameError` for that one data set.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, DecimalException, localcontext
from types import MappingProxyType
from typing import Final

from core.numbers import BOUNDED, OutOfRange

# unit as written by meters -> (canonical unit, power of ten to reach it)
UNIT_SCALE: Final[Mapping[str, tuple[str, int]]] = MappingProxyType({
    "kWh": ("kWh", 0), "Wh": ("kWh", -3), "MWh": ("kWh", 3),
    "kvarh": ("kvarh", 0), "varh": ("kvarh", -3), "Mvarh": ("kvarh", 3),
    "W": ("W", 0), "kW": ("W", 3), "MW": ("W", 6),
    "var": ("var", 0), "kvar": ("var", 3),
    "V": ("V", 0), "kV": ("V", 3), "A": ("A", 0), "mA": ("A", -3), "Hz": ("Hz", 0),
    "m3": ("m3", 0), "dm3": ("m3", -3),
})

# DSMR P1 companion standard 5.0.2, section 6.12: (C, D, E) of the codes whose values the table
# gives with a unit. Meters print the unit; some (and DSMR 2.2 variants) leave it out, and then
# this is the unit the standard fixes (`1-0:1.7.0(000001.2964)` is 1.2964 kW, not W).
# 0-n:24.2.1 is absent on purpose: its unit depends on the M-Bus device (m3 or GJ), and a value
# without one is what meters send for an empty channel (`(700101010000W)(00000000)`).
DSMR_UNITS: Final[Mapping[tuple[str, str, str], str]] = MappingProxyType({
    ("1", "8", "1"): "kWh", ("1", "8", "2"): "kWh",  # energy delivered to client, tariff 1 / 2
    ("2", "8", "1"): "kWh", ("2", "8", "2"): "kWh",  # energy delivered by client, tariff 1 / 2
    ("1", "7", "0"): "kW", ("2", "7", "0"): "kW",  # actual power delivered / received
    ("32", "7", "0"): "V", ("52", "7", "0"): "V", ("72", "7", "0"): "V",  # voltage L1..L3
    ("31", "7", "0"): "A", ("51", "7", "0"): "A", ("71", "7", "0"): "A",  # current L1..L3
    ("21", "7", "0"): "kW", ("41", "7", "0"): "kW", ("61", "7", "0"): "kW",  # +P L1..L3
    ("22", "7", "0"): "kW", ("42", "7", "0"): "kW", ("62", "7", "0"): "kW",  # -P L1..L3
})
# IEC 62056-21 readouts: the standard documents no unit per code.
NO_DOCUMENTED_UNITS: Final[Mapping[tuple[str, str, str], str]] = MappingProxyType({})

_ONE: Final = Decimal(1)


def scale_to(value: Decimal, unit: str, canonical: str) -> Decimal | None:
    """`value` in `unit` converted exactly to `canonical`; None when the unit does not convert.

    Raises OutOfRange when the result does not fit the bounded context (a 26-digit kW value).
    """
    known = UNIT_SCALE.get(unit)
    if known is None or known[0] != canonical:
        return None
    try:
        # core.numbers.bounded() is this same context; its return type hides __enter__ from mypy
        with localcontext(BOUNDED):
            scaled = value.scaleb(known[1])
            # kW -> W turns 2.589 into 2.589E+3; store the plain integer 2589 instead.
            exponent = scaled.as_tuple().exponent
            return scaled.quantize(_ONE) if isinstance(exponent, int) and exponent > 0 else +scaled
    except DecimalException as error:
        raise OutOfRange(f"{value!s:.40} {unit} does not fit in {canonical}") from error
