"""Values too large for the bounded context, behind a valid BCC / CRC: a FrameError for that one
data set (counted for the meter, logged with its id), never an exception out of the driver, and
the other data sets of the readout or telegram are still mapped."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from decimal import Context, Decimal, localcontext

import pytest
import serial
from hypothesis import example, given, settings
from hypothesis import strategies as st

from drivers.iec62056.datasets import DataSet, DataValue
from drivers.iec62056.mapping import DataSetRefused, map_datasets
from drivers.iec62056.p1 import P1Port
from drivers.iec62056.reader import Iec62056Bus
from drivers.iec62056.readout import CHECKSUM_OK, decode_message, encode_telegram
from drivers.iec62056.sim import MeterSim, P1Sim
from drivers.obis.units import UNIT_SCALE
from tests.corpus import CORPUS
from tests.drivers.iec62056.conftest import e650, port_factory

TIMEOUT_S = 30.0
DIGITS_26 = "12345678901234567890123456"  # 26 digits: past the 28-digit default once scaled
DIGITS_40 = "1234567890123456789012345678901234567890"  # beyond the bounded 34 digits
ISKRA = json.loads((CORPUS / "iec62056/dsmr_telegrams.json").read_text())[0]["telegram"]
ISKRA_READOUT = decode_message(ISKRA.encode("latin-1"))
# Codes with (quantity's canonical unit); each generated data set uses a different one.
CODES = {"1-0:1.8.1": "kWh", "1-0:2.8.2": "kWh", "1-0:3.8.0": "kvarh", "1-0:1.7.0": "W",
         "1-0:21.7.0": "W", "1-0:32.7.0": "V", "1-0:31.7.0": "A", "1-0:14.7.0": "Hz"}
QUANTITIES = {"1-0:1.8.1": "import_active_energy_t1", "1-0:2.8.2": "export_active_energy_t2",
              "1-0:3.8.0": "import_reactive_energy", "1-0:1.7.0": "active_power",
              "1-0:21.7.0": "active_power_l1", "1-0:32.7.0": "voltage_l1",
              "1-0:31.7.0": "current_l1", "1-0:14.7.0": "frequency"}


def _telegram_with(sets: list[DataSet]) -> bytes:
    """The Iskra telegram's identification and these data sets, with the CRC recomputed."""
    assert ISKRA_READOUT.identification is not None
    return encode_telegram(ISKRA_READOUT.identification, sets)


def test_a_26_digit_kilowatt_value_is_converted_exactly() -> None:
    # the default context (28 digits) raised InvalidOperation on kW -> W of 26 digits
    mapped = map_datasets([DataSet("1-0:1.7.0", (DataValue(DIGITS_26, "kW"),))])
    assert mapped.errors == []
    assert mapped.samples[0].value == Decimal(DIGITS_26 + "000")


def test_a_value_out_of_range_refuses_its_data_set_only() -> None:
    sets = [DataSet("1-0:1.7.0", (DataValue(DIGITS_40, "kW"),)),
            DataSet("1-0:1.8.1", (DataValue("000004.426", "kWh"),))]
    mapped = map_datasets(sets)
    assert [s.quantity for s in mapped.samples] == ["import_active_energy_t1"]
    (error,) = mapped.errors
    assert isinstance(error, DataSetRefused) and error.address == "1-0:1.7.0"
    assert "out of range" in str(error)


def test_a_value_that_fits_until_it_is_scaled_is_refused() -> None:
    value = "9" * 33  # 33 digits fit; in W (36 digits) it does not
    mapped = map_datasets([DataSet("1-0:1.7.0", (DataValue(value, "kW"),))])
    assert mapped.samples == []
    assert "does not fit" in str(mapped.errors[0])


def test_a_value_beyond_the_precision_is_refused_even_without_scaling() -> None:
    mapped = map_datasets([DataSet("1-0:1.8.0", (DataValue("9" * 40, "kWh"),))])
    assert mapped.samples == [] and len(mapped.errors) == 1


def test_the_largest_value_that_fits_is_kept_exactly() -> None:
    value = "9" * 31 + ".123"  # 34 digits: the bounded precision
    mapped = map_datasets([DataSet("1-0:1.8.0", (DataValue(value, "kWh"),))])
    assert mapped.errors == []
    assert mapped.samples[0].value == Decimal(value)


async def test_p1_port_counts_the_refused_data_set_and_yields_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sets = [replace(s, values=(DataValue(DIGITS_40, "kW"),)) if s.address == "1-0:1.7.0" else s
            for s in ISKRA_READOUT.datasets]
    with P1Sim([_telegram_with(sets)], interval_s=0.05) as sim:
        port = serial.Serial(sim.port_path, 115200, timeout=0)
        p1 = P1Port(port, "p1-test", meter="home-1")
        with caplog.at_level(logging.WARNING, logger="drivers.iec62056.p1"):
            telegram = await anext(aiter(p1.telegrams()))
        port.close()
    values = {s.quantity: s.value for s in telegram.mapped.samples}
    assert "active_power" not in values
    assert values["import_active_energy_t1"] == Decimal("4.426")
    assert values["voltage_l1"] == Decimal("230.0")
    assert p1.counters["dataset_errors"] == 1 and p1.counters["telegrams_ok"] == 1
    (record,) = [r for r in caplog.records if r.message == "p1_dataset_refused"]
    assert record.meter == "home-1"  # type: ignore[attr-defined]


async def test_optical_read_counts_the_refused_data_set_for_the_meter() -> None:
    meter = e650()
    meter.datasets.append(DataSet("1.7.0", (DataValue(DIGITS_40, "kW"),)))
    with MeterSim([meter]) as sim:
        bus = Iec62056Bus(port_factory(sim.port_path))
        result = await bus.read("e650", "", {}, TIMEOUT_S)
        await bus.close()
    values = {s.quantity: s.value for s in result.samples}
    assert values["import_active_energy"] == Decimal("1005")
    assert "active_power" not in values
    assert bus.counters("e650")["dataset_errors"] == 1
    assert bus.counters("e650")["reads_ok"] == 1


def _expected(text: str, unit: str) -> Decimal:
    """The exact value in the canonical unit, computed without any bound."""
    with localcontext(Context(prec=500, Emax=10**6, Emin=-(10**6))):
        scaled = Decimal(text).scaleb(UNIT_SCALE[unit][1])
        exponent = scaled.as_tuple().exponent
        return scaled.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 \
            else scaled


def _units_for(canonical: str) -> list[str]:
    return sorted(u for u, (c, _) in UNIT_SCALE.items() if c == canonical)


numbers = st.builds(lambda sign, whole, frac: sign + whole + (f".{frac}" if frac else ""),
                    st.sampled_from(["", "+", "-"]), st.text("0123456789", min_size=1,
                                                              max_size=60),
                    st.text("0123456789", max_size=40))
data_set = st.sampled_from(sorted(CODES)).flatmap(
    lambda code: st.tuples(st.just(code), numbers, st.sampled_from(_units_for(CODES[code]))))


@settings(max_examples=150, deadline=None)
@given(st.lists(data_set, max_size=8, unique_by=lambda t: t[0]))
@example([("1-0:1.7.0", DIGITS_26, "kW"), ("1-0:1.8.1", "000004.426", "kWh")])
@example([("1-0:1.7.0", DIGITS_40, "kW"), ("1-0:32.7.0", "0230.0", "V")])
@example([("1-0:1.8.1", "1234567890123456789012345678901234567890.1", "MWh")])
def test_any_value_behind_a_valid_crc_is_stored_exactly_or_refused(
    generated: list[tuple[str, str, str]],
) -> None:
    sets = [DataSet(code, (DataValue(text, unit),)) for code, text, unit in generated]
    readout = decode_message(_telegram_with(sets))
    assert readout.checksum == CHECKSUM_OK and list(readout.datasets) == sets
    telegram = P1Port(None, "prop")._decode(_telegram_with(sets))  # never raises
    assert telegram is not None
    mapped = {s.quantity: s.value for s in telegram.mapped.samples if s.quantity in
              QUANTITIES.values()}
    refused = {e.address for e in telegram.mapped.errors}
    for code, text, unit in generated:
        quantity = QUANTITIES[code]
        assert (quantity in mapped) != (code in refused)  # stored or refused, never both
        if quantity in mapped:
            assert mapped[quantity] == _expected(text, unit)
        digits = len(text.lstrip("+-").replace(".", "").lstrip("0"))
        if digits <= 20 and len(text.partition(".")[2]) <= 6:
            assert quantity in mapped  # every real register fits
